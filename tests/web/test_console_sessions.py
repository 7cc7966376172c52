"""Console sessions end on the server: after signing out, after the user is disabled, after a
password change, a copy of the session cookie leads to the sign-in page and can do nothing.
Driven over HTTP (the real web app, no browser), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.credits.models import CreditLot
from creditflow.customer.service import create_customer
from creditflow.kit.clock import FixedClock
from creditflow.payment.sandbox import SandboxGateway
from creditflow.support import service as support
from creditflow.support.models import AuditRecord, ConsoleSession
from creditflow.web.app import create_web_app
from creditflow.web.security import CONSOLE_COOKIE

NOW = datetime(2026, 1, 31, 10, tzinfo=timezone.utc)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _app(db):
    ctx = Context(db=db, catalog=load_catalog(), gateway=SandboxGateway(db), clock=FixedClock(NOW))
    with db.transaction() as session:
        alice = support.create_support_user(session, username="alice", password="alice password", role="admin",
                                            now=NOW)
        bob = support.create_support_user(session, username="bob", password="bob password", role="support",
                                          now=NOW)
        customer = create_customer(ctx, session, external_id="ext_1", email="ada@example.com")
    return create_web_app(ctx, secret_key="k"), alice, bob, customer.id


def _browser(app, cookie: str | None = None) -> TestClient:
    client = TestClient(app, base_url="http://testserver", follow_redirects=False)
    if cookie is not None:
        client.cookies.set(CONSOLE_COOKIE, cookie, path="/console")
    return client


def _sign_in(app, username: str, password: str) -> TestClient:
    client = _browser(app)
    csrf = CSRF.search(client.get("/console/login").text).group(1)
    response = client.post("/console/login", data={"csrf_token": csrf, "username": username, "password": password})
    assert (response.status_code, response.headers["location"]) == (303, "/console"), response.text
    return client


def _csrf(client: TestClient) -> str:
    page = client.get("/console")
    assert page.status_code == 200
    return CSRF.search(page.text).group(1)


def _signed_out(client: TestClient) -> bool:
    response = client.get("/console")
    return response.status_code == 303 and response.headers["location"] == "/console/login"


def _promo_grants(db) -> tuple[int, int]:
    with db.transaction(readonly=True) as session:
        lots = session.scalar(select(func.count()).select_from(CreditLot).where(CreditLot.kind == "promo"))
        audits = session.scalar(select(func.count()).select_from(AuditRecord)
                                .where(AuditRecord.action == "credits.promo_grant"))
    return lots, audits


def test_a_copied_cookie_stops_working_once_its_session_signs_out(db):
    app, _, _, customer_id = _app(db)
    original = _sign_in(app, "bob", "bob password")
    cookie = original.cookies.get(CONSOLE_COOKIE)
    csrf = _csrf(original)
    copy = _browser(app, cookie)
    assert copy.get("/console").status_code == 200  # the copy works while the session lives

    assert original.post("/console/logout", data={"csrf_token": csrf}).headers["location"] == "/console/login"

    replay = _browser(app, cookie)
    assert _signed_out(replay)
    grant = replay.post(f"/console/customers/{customer_id}/promo",
                        data={"csrf_token": csrf, "amount": "500", "reason": "replayed cookie"})
    assert (grant.status_code, grant.headers["location"]) == (303, "/console/login")
    assert _promo_grants(db) == (0, 0)  # no credits, not even a failed audit record
    # The same request from a live session does grant: the refusal above is the session's doing.
    live = _sign_in(app, "bob", "bob password")
    assert live.post(f"/console/customers/{customer_id}/promo",
                     data={"csrf_token": _csrf(live), "amount": "500", "reason": "goodwill"}).status_code == 303
    assert _promo_grants(db) == (1, 1)


def test_signing_out_ends_only_that_session(db):
    app, *_ = _app(db)
    first, second = _sign_in(app, "bob", "bob password"), _sign_in(app, "bob", "bob password")
    cookie = first.cookies.get(CONSOLE_COOKIE)
    first.post("/console/logout", data={"csrf_token": _csrf(first)})
    assert _signed_out(_browser(app, cookie))
    assert not _signed_out(second)


def test_disabling_a_user_ends_all_their_sessions_for_good(db):
    app, _, bob, _ = _app(db)
    admin = _sign_in(app, "alice", "alice password")
    laptop, phone = _sign_in(app, "bob", "bob password"), _sign_in(app, "bob", "bob password")
    cookies = [laptop.cookies.get(CONSOLE_COOKIE), phone.cookies.get(CONSOLE_COOKIE)]

    disabled = admin.post(f"/console/users/{bob.id}/disable", data={"csrf_token": _csrf(admin), "reason": "left"})
    assert disabled.status_code == 303
    assert all(_signed_out(_browser(app, cookie)) for cookie in cookies)

    # Enabled again, bob signs in afresh: the sessions from before stay ended.
    with db.transaction() as session:
        support.set_user_disabled(session, bob.id, disabled=False, now=NOW)
    assert all(_signed_out(_browser(app, cookie)) for cookie in cookies)
    assert not _signed_out(_sign_in(app, "bob", "bob password"))
    assert not _signed_out(admin)  # the admin's own session goes on


def test_a_password_change_ends_every_session_of_the_user_and_keeps_this_browser_in(db):
    app, *_ = _app(db)
    here, elsewhere = _sign_in(app, "bob", "bob password"), _sign_in(app, "bob", "bob password")
    alice = _sign_in(app, "alice", "alice password")
    old_cookie = here.cookies.get(CONSOLE_COOKIE)

    for fields, message in (
        ({"current_password": "wrong password", "new_password": "new password 1", "confirm_password": "new password 1"},
         "The current password is wrong."),
        ({"current_password": "bob password", "new_password": "short", "confirm_password": "short"},
         "at least 8 characters"),
        ({"current_password": "bob password", "new_password": "new password 1", "confirm_password": "new password 2"},
         "confirmation differ"),
    ):
        refused = here.post("/console/password", data={"csrf_token": _csrf(here), **fields})
        assert refused.status_code == 422 and message in refused.text, refused.text
    assert not _signed_out(elsewhere)  # a refused change changes nothing

    changed = here.post("/console/password", data={
        "csrf_token": _csrf(here), "current_password": "bob password", "new_password": "new password 1",
        "confirm_password": "new password 1"})
    assert (changed.status_code, changed.headers["location"]) == (303, "/console")
    assert "password was changed" in here.get("/console").text  # this browser stays in, with a new session
    assert _signed_out(elsewhere)
    assert _signed_out(_browser(app, old_cookie))  # including this browser's session from before
    assert not _signed_out(alice)  # someone else's sessions go on

    login = _browser(app)
    csrf = CSRF.search(login.get("/console/login").text).group(1)
    assert login.post("/console/login", data={"csrf_token": csrf, "username": "bob",
                                              "password": "bob password"}).status_code == 401
    assert not _signed_out(_sign_in(app, "bob", "new password 1"))


def test_an_expired_session_row_is_refused_and_cleared_at_the_next_sign_in(db):
    app, _, bob, _ = _app(db)
    browser = _sign_in(app, "bob", "bob password")
    with db.transaction() as session:
        for row in session.scalars(select(ConsoleSession)):
            row.expires_at = datetime.now(timezone.utc) - timedelta(seconds=1)
    assert _signed_out(browser)
    _sign_in(app, "alice", "alice password")
    with db.transaction(readonly=True) as session:
        users = [row.user_id for row in session.scalars(select(ConsoleSession))]
    assert len(users) == 1 and users != [bob.id]  # bob's expired row went, alice's new one is there
