"""Members of a team: invite, accept, change role or limit, suspend, remove; and what the
subscription package tells a team (its plan changed, it ended, it came back).

Every use case takes the ORM session of its entry point's transaction and locks the team's
customer row first, so seat counts are exact when two invitations race.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditflow.catalog.models import Catalog
from creditflow.customer.service import email_address, get_customer
from creditflow.events.outbox import record_event
from creditflow.kit.credits import Credits
from creditflow.kit.db.rows import get_or_not_found, locking
from creditflow.kit.errors import Conflict, InvalidRequest, NotFound
from creditflow.kit.ids import new_id
from creditflow.team.models import CURRENT_STATUSES, Team, TeamMember, TeamSpend
from creditflow.team.usage import period_key, period_start

INVITE_TTL = timedelta(days=7)
INVITE_PATH = "/team/invitations/"
MEMBER_ROLES = ("admin", "member")  # what an invitation or a role change may give; one owner
UNSET = object()


@dataclass(frozen=True)
class Seats:
    used: int  # the owner, active members and invitations not yet expired
    limit: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_token(secret_key: str, member_id: str, expires_at: datetime) -> str:
    """An invitation's one-time token, derived from the server's secret: the worker that emails
    the invitation makes the same link the API answered, while only its hash is stored."""
    message = f"team-invitation:{member_id}:{expires_at:%Y-%m-%dT%H:%M:%S}".encode()
    digest = hmac.new(secret_key.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def is_invitation_token(member: TeamMember, token: str) -> bool:
    return member.invite_token_hash is not None and hmac.compare_digest(member.invite_token_hash, _hash(token))


def seat_limit(catalog: Catalog, plan: str | None) -> int:
    """A plan's seats; Free (None, `free`, or a plan no longer in the catalog) has one: the owner's."""
    found = catalog.plans.get(plan) if plan else None
    return found.seats if found is not None else 1


def get_team(session: Session, customer_id: str) -> Team | None:
    return session.get(Team, customer_id)


def _holds_seat(member: TeamMember, now: datetime) -> bool:
    if member.status == "active":
        return True
    return member.status == "invited" and member.invite_expires_at is not None and member.invite_expires_at > now


def current_members(session: Session, customer_id: str) -> list[TeamMember]:
    """The team's seats, owner first, then in the order they were taken."""
    return list(session.scalars(
        select(TeamMember).where(TeamMember.customer_id == customer_id, TeamMember.status.in_(CURRENT_STATUSES))
        .order_by((TeamMember.role != "owner"), TeamMember.created_at, TeamMember.id)))


def list_members(session: Session, customer_id: str, now: datetime) -> list[TeamMember]:
    """Members as the team sees them: expired invitations are left out."""
    get_customer(session, customer_id)
    return [m for m in current_members(session, customer_id)
            if not (m.status == "invited" and not _holds_seat(m, now))]


def seats(session: Session, catalog: Catalog, customer_id: str, plan: str | None, now: datetime) -> Seats:
    members = current_members(session, customer_id)
    used = sum(1 for m in members if _holds_seat(m, now)) if members else 1
    return Seats(used, seat_limit(catalog, plan))


def ensure_team(session: Session, customer_id: str, *, anchor: datetime | None, now: datetime) -> Team:
    """The customer's team, made on the first invitation with the owner's seat."""
    team = session.get(Team, customer_id)
    if team is not None:
        return team
    customer = get_customer(session, customer_id)
    team = Team(customer_id=customer_id, anchor=anchor or now, created_at=now)
    session.add(team)
    session.add(TeamMember(id=new_id("mem"), customer_id=customer_id, email=customer.email,
                           external_id=customer.external_id, role="owner", status="active", used=Credits(0),
                           joined_at=now, created_at=now))
    session.flush()
    return team


def invite_member(ctx, session: Session, customer_id: str, *, email: str, external_id: str | None = None,
                  role: str = "member", plan: str | None, anchor: datetime | None, now: datetime,
                  secret_key: str | None = None) -> tuple[TeamMember, str]:
    """Invite `email` to the team (made on the first invitation); returns the invitation and
    its one-time token (kept only hashed; derived from `secret_key` when given, so that the
    invitation email can carry the same link). The invitation holds a seat until it is accepted,
    revoked or expires. Errors: InvalidRequest (email, role), Conflict `seat_limit_reached`,
    `member_exists`."""
    email = email_address(email)
    if role not in MEMBER_ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(MEMBER_ROLES)}", param="role")
    get_customer(session, customer_id, for_update=True)  # one seat count at a time
    ensure_team(session, customer_id, anchor=anchor, now=now)
    members = current_members(session, customer_id)
    for member in members:
        if _holds_seat(member, now) or member.status == "suspended":
            if member.email.lower() == email.lower():
                raise Conflict(f"{email} already has a seat in this team ({member.id})", code="member_exists",
                               param="email")
            if external_id is not None and member.external_id == external_id:
                raise Conflict(f"{external_id!r} is already a member of this team ({member.id})",
                               code="member_exists", param="external_id")
        elif member.status == "invited":  # expired: its seat is free again
            member.status, member.ended_at, member.invite_token_hash = "revoked", now, None
    used = sum(1 for m in members if _holds_seat(m, now))
    limit = seat_limit(ctx.catalog, plan)
    if used >= limit:
        raise Conflict(f"all {limit} seats of the {plan or 'free'} plan are taken (the owner's included): remove a "
                       "member or change to a plan with more seats", code="seat_limit_reached", param="email",
                       extra={"seats_used": used, "seat_limit": limit})
    session.flush()
    member_id, expires_at = new_id("mem"), now + INVITE_TTL
    token = (invitation_token(secret_key, member_id, expires_at) if secret_key is not None
             else secrets.token_urlsafe(32))
    member = TeamMember(id=member_id, customer_id=customer_id, email=email, external_id=external_id, role=role,
                        status="invited", used=Credits(0), invite_token_hash=_hash(token),
                        invite_expires_at=expires_at, created_at=now)
    session.add(member)
    session.flush()
    # The link itself is not in the event: its token is kept only hashed; the caller answers it
    # once, and the invitation email derives it again from the secret.
    record_event(session, "member.invited", customer_id=customer_id, now=now, data={
        "member": member.id, "email": email, "role": role,
        "expires_at": member.invite_expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return member, token


def get_member(session: Session, member_id: str, *, for_update: bool = False) -> TeamMember:
    return get_or_not_found(session, TeamMember, member_id, noun="member", param="member",
                            exists=lambda member: member.status not in ("removed", "revoked"),
                            **locking(for_update))


def find_by_token(session: Session, token: str) -> TeamMember | None:
    return session.scalar(select(TeamMember).where(TeamMember.invite_token_hash == _hash(token)))


def member_by_token(session: Session, token: str, now: datetime) -> TeamMember:
    """The invitation a link's token names, while it may still be accepted."""
    member = find_by_token(session, token)
    if member is None or not _holds_seat(member, now) or member.status != "invited":
        raise NotFound("this invitation is not valid: it was used, revoked or has expired", param="token")
    return member


def accept_invitation(ctx, session: Session, member_id: str, *, external_id: str, plan: str | None,
                      now: datetime) -> TeamMember:
    """The invited person joins (the host app accepts on their behalf, naming who they are).
    Accepting again for the same person returns the member. Errors: NotFound, Conflict
    `invitation_expired`, `member_exists` (that person already has a seat), `seat_limit_reached`."""
    if not isinstance(external_id, str) or not external_id.strip():
        raise InvalidRequest("external_id is required: the host app's id of the person joining",
                             param="external_id")
    member = get_member(session, member_id)
    get_customer(session, member.customer_id, for_update=True)
    member = get_member(session, member_id, for_update=True)
    if member.status != "invited":
        if member.external_id == external_id:
            return member
        raise Conflict(f"the invitation was already accepted ({member.status})", code="invitation_used",
                       param="member")
    if not _holds_seat(member, now):
        raise Conflict("the invitation has expired: send a new one", code="invitation_expired", param="member")
    others = [m for m in current_members(session, member.customer_id) if m.id != member.id]
    if any(m.external_id == external_id for m in others):
        raise Conflict(f"{external_id!r} is already a member of this team", code="member_exists",
                       param="external_id")
    active = sum(1 for m in others if m.status == "active")
    if active >= seat_limit(ctx.catalog, plan):
        raise Conflict("no seat is free on the team's plan", code="seat_limit_reached", param="member")
    member.status, member.external_id, member.joined_at = "active", external_id, now
    member.invite_token_hash = None  # the link works once
    record_event(session, "member.joined", customer_id=member.customer_id, now=now,
                 data={"member": member.id, "email": member.email, "external_id": external_id})
    return member


def update_member(ctx, session: Session, member_id: str, *, role=UNSET, monthly_limit=UNSET, status=UNSET,
                  plan: str | None, now: datetime) -> TeamMember:
    """Change a member's role, monthly limit (None: no limit) or status (`suspended`, or
    `active` again when a seat is free). The owner's role and status don't change."""
    member = get_member(session, member_id)
    get_customer(session, member.customer_id, for_update=True)
    member = get_member(session, member_id, for_update=True)
    if role is not UNSET:
        if member.role == "owner" and role != "owner":
            raise Conflict("the owner stays the owner: the team is the owner's customer account",
                           code="owner_role", param="role")
        if role != member.role:
            if role not in MEMBER_ROLES:
                raise InvalidRequest(f"role must be one of {', '.join(MEMBER_ROLES)}", param="role")
            member.role = role
    if monthly_limit is not UNSET:
        member.monthly_limit = None if monthly_limit is None else Credits.parse(monthly_limit, "monthly_limit")
    if status is not UNSET and status != member.status:
        if member.role == "owner":
            raise Conflict("the owner can't be suspended", code="owner_role", param="status")
        if status == "suspended" and member.status == "active":
            suspend(session, member, reason="admin", now=now)
        elif status == "active" and member.status == "suspended":
            taken = sum(1 for m in current_members(session, member.customer_id) if _holds_seat(m, now))
            if taken >= seat_limit(ctx.catalog, plan):
                raise Conflict("no seat is free on the team's plan", code="seat_limit_reached", param="status")
            member.status, member.suspended_reason = "active", None
        else:
            raise InvalidRequest(f"a member that is {member.status} can't become {status}", param="status")
    return member


def remove_member(session: Session, member_id: str, *, now: datetime) -> TeamMember:
    """Remove a member or revoke an invitation: the seat is free at once."""
    member = get_member(session, member_id)
    get_customer(session, member.customer_id, for_update=True)
    member = get_member(session, member_id, for_update=True)
    if member.role == "owner":
        raise Conflict("the owner can't be removed from their own team", code="owner_role", param="member")
    member.status = "revoked" if member.status == "invited" else "removed"
    member.ended_at, member.invite_token_hash = now, None
    record_event(session, "member.removed", customer_id=member.customer_id, now=now,
                 data={"member": member.id, "email": member.email, "status": member.status})
    return member


def suspend(session: Session, member: TeamMember, *, reason: str, now: datetime) -> None:
    member.status, member.suspended_reason = "suspended", reason
    record_event(session, "member.suspended", customer_id=member.customer_id, now=now,
                 data={"member": member.id, "email": member.email, "reason": reason})


def used_this_month(team: Team | None, member: TeamMember, now: datetime) -> Credits:
    if team is None or member.used_period != period_key(team.anchor, now):
        return Credits(0)
    return member.used


def current_period_start(team: Team, now: datetime) -> datetime:
    return period_start(period_key(team.anchor, now))


def members_by_reference(session: Session, customer_id: str, references: list[str]) -> dict[str, str]:
    """Which member made each of these spends or holds (the ledger's `member`)."""
    if not references:
        return {}
    return dict(session.execute(select(TeamSpend.reference, TeamSpend.member_id).where(
        TeamSpend.customer_id == customer_id, TeamSpend.reference.in_(sorted(set(references))))).all())


# -- what the subscription package tells the team ------------------------------------------------

def refuse_too_many_members(ctx, session: Session, customer_id: str, target_plan: str, now: datetime) -> None:
    """Under the `refuse` policy, a change to a plan with fewer seats than the team fills is
    refused until members are removed. Errors: Conflict `too_many_members`."""
    if ctx.catalog.policies.seats_on_downgrade != "refuse" or session.get(Team, customer_id) is None:
        return
    used = sum(1 for m in current_members(session, customer_id) if _holds_seat(m, now))
    limit = seat_limit(ctx.catalog, target_plan)
    if used > limit:
        raise Conflict(f"the {target_plan} plan has {limit} seats and the team fills {used} (the owner's and "
                       f"invitations included): remove {used - limit} first", code="too_many_members",
                       param="plan", extra={"seats_used": used, "seat_limit": limit})


def on_subscription_change(ctx, session: Session, customer_id: str, *, status: str, plan: str | None,
                           anchor: datetime, now: datetime) -> None:
    """Keep the team in step with its subscription: monthly boundaries count from its anchor;
    when it ends, every seat but the owner's is suspended (members keep their membership);
    when it is active again they come back as far as the plan's seats allow; a plan with fewer
    seats than the team fills suspends the newest members."""
    team = session.get(Team, customer_id)
    if team is None:
        return
    if status in ("active", "past_due") and team.anchor != anchor:
        team.anchor = anchor
    if status == "past_due":  # the plan and its features stay while payment is retried
        return
    limit = seat_limit(ctx.catalog, plan if status == "active" else None)
    members = current_members(session, customer_id)
    taken = sum(1 for m in members if _holds_seat(m, now))
    if status == "active":
        for member in members:  # the oldest first
            if member.status == "suspended" and member.suspended_reason == "ended" and taken < limit:
                member.status, member.suspended_reason = "active", None
                taken += 1
                record_event(session, "member.joined", customer_id=customer_id, now=now,
                             data={"member": member.id, "email": member.email, "external_id": member.external_id,
                                   "restored": True})
    reason = "ended" if status == "ended" else "downgrade"
    for member in reversed(members):  # the newest first
        if taken <= limit:
            break
        if member.role == "owner" or not _holds_seat(member, now):
            continue
        if member.status == "invited":
            member.status, member.ended_at, member.invite_token_hash = "revoked", now, None
            record_event(session, "member.removed", customer_id=customer_id, now=now,
                         data={"member": member.id, "email": member.email, "status": "revoked"})
        else:
            suspend(session, member, reason=reason, now=now)
        taken -= 1


def check_member_of(session: Session, customer_id: str, member_id: str) -> TeamMember:
    """`member_id` is an active member of the customer's team (NotFound otherwise)."""
    member = session.get(TeamMember, member_id)
    if member is None or member.customer_id != customer_id or member.status != "active":
        raise NotFound(f"no active member {member_id} in this customer's team", param="member")
    return member
