"""Support users (sign-in, roles, bootstrap from the environment) and the audit log.

Roles: `support` can use every customer action of the console; `admin` can also add and
disable console users.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from creditflow.kit.db.rows import get_or_not_found
from creditflow.kit.errors import Conflict, InvalidRequest
from creditflow.kit.ids import new_id
from creditflow.kit.settings import comma_separated
from creditflow.support.models import ROLES, AuditRecord, SupportUser
from creditflow.support.passwords import DUMMY_HASH, hash_password, verify_password
from creditflow.support.sessions import end_user_sessions

USERS_ENV_VAR = "CREDITFLOW_SUPPORT_USERS"
MIN_PASSWORD_LENGTH = 8
MAX_REASON = 1000
API_KEY_ROLE = "support_key"  # the role an audit record names for an action made with a support API key
NO_REASON = "(no reason given)"


@dataclass(frozen=True)
class Staff:
    """A signed-in console user, as the console carries it around."""

    id: str
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _staff(user: SupportUser) -> Staff:
    return Staff(user.id, user.username, user.role)


def _check_username(username: str) -> str:
    username = (username or "").strip()
    if not username or len(username) > 64 or not all(c.isalnum() or c in "._-@" for c in username):
        raise InvalidRequest("a username is 1 to 64 letters, digits or . _ - @", param="username")
    return username


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of: {', '.join(ROLES)}", param="role")
    return role


def create_support_user(session: Session, *, username: str, password: str, role: str, now: datetime) -> Staff:
    username, role = _check_username(username), _check_role(role)
    if not password or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"a password needs at least {MIN_PASSWORD_LENGTH} characters", param="password")
    if session.scalar(select(SupportUser.id).where(SupportUser.username == username)):
        raise Conflict(f"there is already a user named {username!r}", code="user_exists", param="username")
    user = SupportUser(id=new_id("usr"), username=username, password_hash=hash_password(password), role=role,
                       created_at=now)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"there is already a user named {username!r}", code="user_exists",
                       param="username") from None
    return _staff(user)


def authenticate_staff(session: Session, username: str, password: str) -> Staff | None:
    user = session.scalar(select(SupportUser).where(SupportUser.username == (username or "").strip()))
    if user is None:
        verify_password(password or "", DUMMY_HASH)
        return None
    if not verify_password(password or "", user.password_hash) or user.disabled_at is not None:
        return None
    return _staff(user)


def get_staff(session: Session, user_id: str) -> Staff | None:
    """The user behind a console session, or None once disabled or removed."""
    user = session.get(SupportUser, user_id)
    if user is None or user.disabled_at is not None:
        return None
    return _staff(user)


def list_support_users(session: Session) -> list[SupportUser]:
    return list(session.scalars(select(SupportUser).order_by(SupportUser.username)))


def set_user_disabled(session: Session, user_id: str, *, disabled: bool, now: datetime) -> SupportUser:
    user = get_or_not_found(session, SupportUser, user_id, noun="user", param="user", with_for_update=True)
    user.disabled_at = now if disabled else None
    if disabled:  # signed out everywhere: enabling the user again doesn't bring the sessions back
        end_user_sessions(session, user_id)
    return user


def change_password(session: Session, user_id: str, *, current: str, new: str) -> SupportUser:
    """A user's own password change: the current password first, then a new one of at least
    `MIN_PASSWORD_LENGTH` characters. Every console session of the user ends (a session someone
    else may hold is the usual reason to change a password); the caller starts a new one for the
    browser that asked."""
    user = get_or_not_found(session, SupportUser, user_id, noun="user", param="user",
                            exists=lambda user: user.disabled_at is None, with_for_update=True)
    if not verify_password(current or "", user.password_hash):
        raise InvalidRequest("the current password is wrong", param="current_password")
    if not new or len(new) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"a password needs at least {MIN_PASSWORD_LENGTH} characters", param="new_password")
    if new == current:
        raise InvalidRequest("the new password must differ from the current one", param="new_password")
    user.password_hash = hash_password(new)
    end_user_sessions(session, user_id)
    return user


def parse_bootstrap_users(spec: str | None) -> list[tuple[str, str, str]]:
    """`"alice:secret:support,bob:pw:admin"` -> [(username, password, role)].

    The username ends at the first colon and the role starts after the last one, so a
    password may contain colons (not commas)."""
    users = []
    for item in comma_separated(spec):
        username, sep1, rest = item.partition(":")
        password, sep2, role = rest.rpartition(":")
        if not (sep1 and sep2 and username and password):
            raise ValueError(f"{USERS_ENV_VAR}: expected USERNAME:PASSWORD:ROLE, got an entry for {username!r}")
        if role not in ROLES:
            raise ValueError(f"{USERS_ENV_VAR}: unknown role {role!r} (use {' or '.join(ROLES)})")
        users.append((username, password, role))
    return users


def ensure_support_users(db, users: list[tuple[str, str, str]], *, now: datetime) -> int:
    """Create the given users unless they exist (an existing user is left as it is: the
    console, not the environment, owns it once created). Several processes may run this."""
    created = 0
    for username, password, role in users:
        try:
            with db.transaction() as session:
                if session.scalar(select(SupportUser.id).where(SupportUser.username == username)) is None:
                    create_support_user(session, username=username, password=password, role=role, now=now)
                    created += 1
        except (IntegrityError, Conflict):  # another process created it first
            pass
    return created


def bootstrap_from_env(db, *, now: datetime, environ: dict | None = None) -> int:
    env = os.environ if environ is None else environ
    return ensure_support_users(db, parse_bootstrap_users(env.get(USERS_ENV_VAR)), now=now)


# --- audit log ----------------------------------------------------------------------------------


def check_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidRequest("every support action needs a reason", param="reason")
    if len(reason) > MAX_REASON:
        raise InvalidRequest(f"the reason is longer than {MAX_REASON} characters", param="reason")
    return reason


def open_audit(session: Session, staff: Staff, *, action: str, summary: str, reason: str,
               customer_id: str | None, details: dict | None, now: datetime) -> str:
    record = AuditRecord(id=new_id("aud"), actor_id=staff.id, actor=staff.username, role=staff.role,
                         customer_id=customer_id, action=action, summary=summary[:500], details=details or {},
                         reason=check_reason(reason), outcome="pending", created_at=now)
    session.add(record)
    return record.id


def close_audit(session: Session, audit_id: str, *, succeeded: bool, message: str | None, now: datetime,
                summary: str | None = None) -> None:
    record = session.scalar(select(AuditRecord).where(AuditRecord.id == audit_id).with_for_update())
    record.outcome = "succeeded" if succeeded else "failed"
    if summary:
        record.summary = summary[:500]
    record.message = (message or "")[:1000] or None
    record.completed_at = now


def list_audit(session: Session, *, customer_id: str | None = None, before: int | None = None,
               limit: int = 50) -> list[AuditRecord]:
    """Newest first; `before` is the `seq` of the last record of the previous page."""
    query = select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(limit)
    if customer_id is not None:
        query = query.where(AuditRecord.customer_id == customer_id)
    if before is not None:
        query = query.where(AuditRecord.seq < before)
    return list(session.scalars(query))


def api_staff(key_id: str) -> Staff:
    """A support-scope API key as the actor of an audited action (the audit log names the key)."""
    return Staff(key_id, f"API key {key_id}", API_KEY_ROLE)


def run_audited(ctx, staff: Staff, *, action: str, summary: str, reason: str | None, customer_id: str | None,
                work, details: dict | None = None, describe=None, done: str | None = None,
                reason_required: bool = True):
    """Run a support action with its audit record: written before the action (so an action
    that dies half-way still leaves a trace), completed with the outcome after. The action
    runs outside the audit's transaction: payment use cases open their own.

    `summary` says what is attempted ("Grant 500 promotional credits"): that is what a pending
    or failed record keeps. `done` is what it says once the action succeeded ("Granted ...").
    An API call whose request has no required reason (`reason_required=False`) is recorded as
    giving none."""
    from creditflow.kit.errors import CreditflowError

    if reason_required or (reason or "").strip():
        reason = check_reason(reason)
    else:
        reason = NO_REASON
    with ctx.db.transaction() as session:
        audit_id = open_audit(session, staff, action=action, summary=summary, reason=reason,
                              customer_id=customer_id, details=details, now=ctx.clock.now())
    try:
        result = work()
    except CreditflowError as exc:
        _finish(ctx, audit_id, succeeded=False, message=exc.message)
        raise
    except Exception as exc:
        _finish(ctx, audit_id, succeeded=False, message=f"unexpected error: {exc.__class__.__name__}")
        raise
    _finish(ctx, audit_id, succeeded=True, message=describe(result) if describe else None, summary=done)
    return result


def _finish(ctx, audit_id: str, *, succeeded: bool, message: str | None, summary: str | None = None) -> None:
    ctx.db.run(lambda session: close_audit(session, audit_id, succeeded=succeeded, message=message,
                                           now=ctx.clock.now(), summary=summary))
