"""Teams: members (invite, accept, role, monthly limit, suspend, remove) and auto top-up."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from creditflow.api.deps import AppSettings, Caller, Ctx
from creditflow.api.errors import errors
from creditflow.api.schemas.team import (
    AutoTopUpRead,
    AutoTopUpSet,
    MemberAccept,
    MemberCreate,
    MemberList,
    MemberRead,
    MemberUpdate,
)
from creditflow.customer.service import customer_now
from creditflow.kit.errors import NotFound
from creditflow.subscription.service import customer_subscription
from creditflow.team import autotopup
from creditflow.team import service as team

router = APIRouter(tags=["teams"])


def _plan_and_anchor(session, customer_id: str):
    """The plan whose seats the team has (None: Free) and its subscription's anchor."""
    try:
        sub = customer_subscription(session, customer_id)
    except NotFound:
        return None, None
    return (sub.plan if sub.status in ("active", "past_due") else None), sub.anchor


def _read(session, member, now, invite_url: str | None = None) -> MemberRead:
    return MemberRead.of(member, team.used_this_month(team.get_team(session, member.customer_id), member, now),
                         invite_url)


@router.post("/customers/{customer_id}/members", status_code=status.HTTP_201_CREATED, response_model=MemberRead,
             responses=errors(404, 409, e409="`seat_limit_reached` (the plan's seats, the owner's included, are "
                                             "taken), `member_exists`"))
def invite(customer_id: str, body: MemberCreate, request: Request, ctx: Ctx, settings: AppSettings, _: Caller):
    """Invite someone to the customer's team (made on the first invitation, with the customer as
    its owner). The invitation holds a seat until it is accepted, revoked or expires (7 days)."""
    with ctx.db.transaction() as session:
        now = customer_now(ctx, session, customer_id)
        plan, anchor = _plan_and_anchor(session, customer_id)
        member, token = team.invite_member(ctx, session, customer_id, email=body.email, external_id=body.external_id,
                                           role=body.role, plan=plan, anchor=anchor, now=now,
                                           secret_key=settings.secret_key)
        base = (settings.public_url or str(request.base_url)).rstrip("/")
        return _read(session, member, now, f"{base}{team.INVITE_PATH}{token}")


@router.get("/customers/{customer_id}/members", response_model=MemberList, responses=errors(404))
def list_(customer_id: str, ctx: Ctx, _: Caller):
    """The team's members, the owner first (a customer without members lists none)."""
    with ctx.db.transaction(readonly=True) as session:
        now = customer_now(ctx, session, customer_id)
        plan, _anchor = _plan_and_anchor(session, customer_id)
        members = team.list_members(session, customer_id, now)
        seats = team.seats(session, ctx.catalog, customer_id, plan, now)
        return MemberList(data=[_read(session, m, now) for m in members], seats_used=seats.used,
                          seat_limit=seats.limit)


@router.get("/members/{member_id}", response_model=MemberRead, responses=errors(404))
def read(member_id: str, ctx: Ctx, _: Caller):
    with ctx.db.transaction(readonly=True) as session:
        member = team.get_member(session, member_id)
        return _read(session, member, customer_now(ctx, session, member.customer_id))


@router.post("/members/{member_id}/accept", response_model=MemberRead,
             responses=errors(404, 409, e409="`invitation_expired`, `invitation_used`, `member_exists`, "
                                             "`seat_limit_reached`"))
def accept(member_id: str, body: MemberAccept, ctx: Ctx, _: Caller):
    """The host app accepts the invitation on the person's behalf, naming who they are."""
    with ctx.db.transaction() as session:
        customer_id = team.get_member(session, member_id).customer_id
        now = customer_now(ctx, session, customer_id)
        plan, _anchor = _plan_and_anchor(session, customer_id)
        member = team.accept_invitation(ctx, session, member_id, external_id=body.external_id, plan=plan, now=now)
        return _read(session, member, now)


@router.post("/members/{member_id}", response_model=MemberRead,
             responses=errors(404, 409, e409="`owner_role` (the owner's role and status don't change), "
                                             "`seat_limit_reached` (no seat to make a member active again)"))
def update(member_id: str, body: MemberUpdate, ctx: Ctx, _: Caller):
    """Change a member's role, monthly limit (null: none) or status."""
    changes = {key: getattr(body, key) for key in body.model_fields_set
               if getattr(body, key) is not None or key == "monthly_limit"}  # null: no limit
    with ctx.db.transaction() as session:
        customer_id = team.get_member(session, member_id).customer_id
        now = customer_now(ctx, session, customer_id)
        plan, _anchor = _plan_and_anchor(session, customer_id)
        member = team.update_member(ctx, session, member_id, plan=plan, now=now, **changes)
        return _read(session, member, now)


@router.delete("/members/{member_id}", response_model=MemberRead,
               responses=errors(404, 409, e409="`owner_role`: the owner can't be removed"))
def remove(member_id: str, ctx: Ctx, _: Caller):
    """Remove a member, or revoke an invitation: the seat is free at once."""
    with ctx.db.transaction() as session:
        customer_id = team.get_member(session, member_id).customer_id
        now = customer_now(ctx, session, customer_id)
        member = team.remove_member(session, member_id, now=now)
        return _read(session, member, now)


@router.post("/customers/{customer_id}/auto_top_up", response_model=AutoTopUpRead,
             responses=errors(403, 404, e403="`feature_not_in_plan`: the plan has no auto top-up"))
def set_auto_top_up(customer_id: str, body: AutoTopUpSet, ctx: Ctx, _: Caller):
    """Buy `bundle` off-session when a spend leaves the available credits below `threshold`, at
    most `monthly_max` times a monthly period. A failed charge turns it off."""
    with ctx.db.transaction() as session:
        now = customer_now(ctx, session, customer_id)
        plan, _anchor = _plan_and_anchor(session, customer_id)
        settings = autotopup.set_auto_top_up(ctx, session, customer_id, enabled=body.enabled, threshold=body.threshold,
                                             bundle=body.bundle, monthly_max=body.monthly_max, plan=plan, now=now)
        return AutoTopUpRead.of(settings, autotopup.purchases_this_period(settings, _period(session, customer_id)))


@router.get("/customers/{customer_id}/auto_top_up", response_model=AutoTopUpRead, responses=errors(404))
def read_auto_top_up(customer_id: str, ctx: Ctx, _: Caller):
    with ctx.db.transaction(readonly=True) as session:
        settings = autotopup.get_auto_top_up(session, customer_id)
        if settings is None:
            raise NotFound("auto top-up was never set for this customer", param="customer")
        return AutoTopUpRead.of(settings, autotopup.purchases_this_period(settings, _period(session, customer_id)))


def _period(session, customer_id: str):
    try:
        return customer_subscription(session, customer_id).credit_period_start
    except NotFound:
        return None
