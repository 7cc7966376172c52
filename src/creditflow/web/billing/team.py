"""The Team section of the billing page, and the page a team member sees.

The owner (and an admin member, in their own session) sees the seats used of the plan's, invites,
removes, and sets roles and monthly limits through the same use cases as the API
(`team.service`); usage per member this monthly period is drawn as a bar chart in SVG, on the
server. A member's page shows the team's pool, their own usage and limit, and no billing
actions: a member's session opens nothing else (see `pages.billing_visit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends

from creditflow.credits.balance import get_balance
from creditflow.customer.service import customer_now, get_customer
from creditflow.kit.credits import Credits
from creditflow.kit.errors import CreditflowError, Forbidden, NotFound
from creditflow.subscription.repository import live_subscription
from creditflow.team import service as team
from creditflow.web.billing.pages import HOME, PostedForm, Visitor
from creditflow.web.messages import plain
from creditflow.web.rendering import HTMLErrorRoute, error_page, render
from creditflow.web.site import Web, current_web

router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)
PREFIX = "/billing/team"
CHART_WIDTH, BAR_HEIGHT, BAR_GAP, LABEL_WIDTH = 560, 22, 10, 170


@dataclass(frozen=True)
class Bar:
    label: str
    used: Credits
    limit: Credits | None
    y: int
    width: int  # of the usage bar
    limit_x: int | None  # where the limit's mark is drawn


@dataclass(frozen=True)
class TeamSection:
    seats: team.Seats
    members: list  # TeamMember
    used: dict  # member id -> Credits this period
    period_start: object
    bars: list[Bar]
    chart_height: int
    can_manage: bool
    me: str | None  # the member whose session it is


def _plan_of(db, customer_id: str) -> str | None:
    sub = live_subscription(db, customer_id)
    return sub.plan if sub is not None else None


def team_section(ctx, db, customer_id: str, *, member_id: str | None = None) -> TeamSection | None:
    """The section, or None when there is nothing to show (no team and a one-seat plan)."""
    now = customer_now(ctx, db, customer_id)
    plan = _plan_of(db, customer_id)
    found = team.get_team(db, customer_id)
    seats = team.seats(db, ctx.catalog, customer_id, plan, now)
    if found is None and seats.limit <= 1:
        return None
    members = team.list_members(db, customer_id, now) if found is not None else []
    used = {m.id: team.used_this_month(found, m, now) for m in members}
    counted = [m for m in members if m.status != "invited"]
    scale = max([used[m.id].milli for m in counted] + [m.monthly_limit.milli for m in counted
                                                        if m.monthly_limit is not None] + [1])
    span = CHART_WIDTH - LABEL_WIDTH - 10
    bars = []
    for i, m in enumerate(counted):
        limit = m.monthly_limit
        bars.append(Bar(label=m.email, used=used[m.id], limit=limit, y=i * (BAR_HEIGHT + BAR_GAP),
                        width=round(span * used[m.id].milli / scale),
                        limit_x=LABEL_WIDTH + round(span * limit.milli / scale) if limit is not None else None))
    me = team.get_member(db, member_id) if member_id else None
    return TeamSection(seats=seats, members=members, used=used,
                       period_start=team.current_period_start(found, now) if found is not None else None,
                       bars=bars, chart_height=max(1, len(bars)) * (BAR_HEIGHT + BAR_GAP),
                       can_manage=me is None or me.role == "admin", me=member_id)


def member_page(visit) -> object:
    """The page a team member opens: the pool, their usage and limit; no billing actions."""
    ctx = visit.ctx
    with ctx.db.transaction(readonly=True) as db:
        customer = get_customer(db, visit.customer_id)
        member = team.get_member(db, visit.session.member)
        now = customer_now(ctx, db, visit.customer_id)
        found = team.get_team(db, visit.customer_id)
        pool = get_balance(ctx, db, visit.customer_id).available
        used = team.used_this_month(found, member, now)
        section = team_section(ctx, db, visit.customer_id, member_id=member.id) if member.role == "admin" else None
    left = None if member.monthly_limit is None else Credits(max(0, member.monthly_limit.milli - used.milli))
    return visit.render("billing/member.html", {
        "title": "Your team credits", "member": member, "pool": pool, "used": used, "left": left,
        "team": section, "owner": customer}, customer=customer)


def _may_manage(visit, db) -> None:
    if visit.session.member is not None and team.get_member(db, visit.session.member).role != "admin":
        raise Forbidden("Only the team's owner and admins manage its members.", code="forbidden")


def _act(visit, work, done: str):
    ctx = visit.ctx

    def run(db):
        _may_manage(visit, db)
        now = customer_now(ctx, db, visit.customer_id)
        return work(db, now, _plan_of(db, visit.customer_id))

    try:
        ctx.db.run(run)
    except CreditflowError as exc:
        return visit.go(HOME + "#team", "error", plain(exc))
    return visit.go(HOME + "#team", "success", done)


def _own(db, visit, member_id: str):
    member = team.get_member(db, member_id)
    if member.customer_id != visit.customer_id:
        raise Forbidden("That member is not in your team.", code="forbidden")
    return member


@router.post(PREFIX + "/invite")
def invite(visit: Visitor, form: PostedForm):
    email, role = form.get("email", "").strip(), form.get("role", "member")

    link = []

    def work(db, now, plan):
        sub = live_subscription(db, visit.customer_id)
        _member, token = team.invite_member(visit.ctx, db, visit.customer_id, email=email, role=role, plan=plan,
                                            anchor=sub.anchor if sub is not None else None, now=now,
                                            secret_key=visit.web.secret_key)
        link.append(f"{str(visit.request.base_url).rstrip('/')}{team.INVITE_PATH}{token}")

    response = _act(visit, work, f"{email} is invited: the invitation holds a seat for 7 days.")
    if link:  # shown once, for the owner to send: only its hash is kept
        response = visit.go(HOME + "#team", "success", f"{email} is invited: the invitation holds a seat for 7 days. "
                                                       f"Send them this link (shown once): {link[0]}")
    return response


@router.post(PREFIX + "/members/{member_id}/remove")
def remove(visit: Visitor, member_id: str, form: PostedForm):
    def work(db, now, plan):
        _own(db, visit, member_id)
        team.remove_member(db, member_id, now=now)

    return _act(visit, work, "The member is removed: their seat is free.")


@router.post(PREFIX + "/members/{member_id}")
def update(visit: Visitor, member_id: str, form: PostedForm):
    changes: dict = {}
    if form.get("role") in team.MEMBER_ROLES:
        changes["role"] = form["role"]
    if "monthly_limit" in form:
        text = form["monthly_limit"].strip()
        changes["monthly_limit"] = text or None

    def work(db, now, plan):
        member = _own(db, visit, member_id)
        if member.role == "owner":
            changes.pop("role", None)
        team.update_member(visit.ctx, db, member_id, plan=plan, now=now, **changes)

    return _act(visit, work, "The member's settings are saved.")


@router.get(team.INVITE_PATH + "{token}")
def invitation(token: str, web: Annotated[Web, Depends(current_web)]):
    """An invitation link: who invites, for which role and until when (joining is the host app's)."""
    ctx = web.ctx
    with ctx.db.transaction(readonly=True) as db:
        try:
            member = team.member_by_token(db, token, customer_now_of_token(ctx, db, token))
        except NotFound:
            return error_page(404, "This invitation is not valid any more: it was used, revoked or has expired. "
                                   "Ask the team's owner for a new one.")
        owner = get_customer(db, member.customer_id)
        expires = f"{member.invite_expires_at:%d %b %Y, %H:%M} UTC"
    return render("billing/invitation.html", {"area": "billing", "flash": None, "title": "Team invitation",
                                              "member": member, "owner": owner, "expires": expires})


def customer_now_of_token(ctx, db, token: str):
    """The invitation's team's "now" (a test clock's, if it has one); the wall clock for an unknown token."""
    member = team.find_by_token(db, token)
    return customer_now(ctx, db, member.customer_id) if member is not None else ctx.clock.now()
