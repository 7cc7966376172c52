"""The parts behind the pages, without a browser: passwords, console users and their bootstrap,
the audit log (on SQLite and PostgreSQL), session cookies, the sign-in throttle, the invoice
PDF, plain-word errors and formatting."""

from __future__ import annotations

import base64
import re
import zlib
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.invoicing.pdf import invoice_filename, render_invoice_pdf
from creditflow.kit.clock import FixedClock
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict, InvalidRequest, PaymentFailed
from creditflow.payment.sandbox import SandboxGateway
from creditflow.support import service as support
from creditflow.support.models import AuditRecord
from creditflow.support.passwords import hash_password, verify_password
from creditflow.web.app import create_web_app
from creditflow.web.messages import plain
from creditflow.web.rendering import Formatter
from creditflow.web.security import LoginThrottle, SessionCodec

NOW = datetime(2026, 1, 31, 10, tzinfo=timezone.utc)


def _ctx(db) -> Context:
    return Context(db=db, catalog=load_catalog(), gateway=SandboxGateway(db), clock=FixedClock(NOW))


# --- passwords and console users --------------------------------------------------------------


def test_passwords_are_salted_scrypt_hashes_that_verify_only_the_right_password():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("scrypt$") and first != second
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct horsE", first)
    assert not verify_password("correct horse", "scrypt$garbage")
    assert not verify_password("correct horse", "md5$1$2$3$4$5")


@pytest.mark.parametrize("spec, expected", [
    ("", []),
    ("alice:password1:support", [("alice", "password1", "support")]),
    (" alice:pa:ss:word:admin , bob:hunter2hunter2:support ",
     [("alice", "pa:ss:word", "admin"), ("bob", "hunter2hunter2", "support")]),
])
def test_bootstrap_users_are_read_from_the_environment_variable(spec, expected):
    assert support.parse_bootstrap_users(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("alice:password1", "expected USERNAME:PASSWORD:ROLE"),
    ("alice:password1:root", "unknown role 'root'"),
    (":password1:support", "expected USERNAME:PASSWORD:ROLE"),
])
def test_bad_bootstrap_entries_are_refused_without_echoing_the_password(spec, message):
    with pytest.raises(ValueError, match=message) as error:
        support.parse_bootstrap_users(spec)
    assert "password1" not in str(error.value)


def test_console_users_sign_in_with_their_password_until_disabled(db):
    created = support.ensure_support_users(db, [("alice", "long password", "support"),
                                                ("root", "another long one", "admin")], now=NOW)
    assert created == 2
    # Idempotent, and an existing user is left alone (the console owns it once created).
    assert support.ensure_support_users(db, [("alice", "a different password", "admin")], now=NOW) == 0
    with db.transaction() as session:
        alice = support.authenticate_staff(session, "alice", "long password")
        assert alice is not None and alice.role == "support" and not alice.is_admin
        assert support.authenticate_staff(session, "alice", "a different password") is None
        assert support.authenticate_staff(session, "nobody", "long password") is None
        assert support.authenticate_staff(session, "root", "another long one").is_admin
        support.set_user_disabled(session, alice.id, disabled=True, now=NOW)
    with db.transaction(readonly=True) as session:
        assert support.authenticate_staff(session, "alice", "long password") is None
        assert support.get_staff(session, alice.id) is None


def test_a_console_user_needs_a_valid_name_role_and_password(db):
    with db.transaction() as session:
        with pytest.raises(InvalidRequest, match="at least 8"):
            support.create_support_user(session, username="bob", password="short", role="support", now=NOW)
        with pytest.raises(InvalidRequest, match="role"):
            support.create_support_user(session, username="bob", password="long enough", role="root", now=NOW)
        with pytest.raises(InvalidRequest, match="username"):
            support.create_support_user(session, username="bob smith", password="long enough", role="support",
                                        now=NOW)
        support.create_support_user(session, username="bob", password="long enough", role="support", now=NOW)
        with pytest.raises(Conflict):
            support.create_support_user(session, username="bob", password="long enough", role="admin", now=NOW)


def test_users_from_the_environment_can_sign_in_to_the_console(sqlite_db, monkeypatch):
    monkeypatch.setenv(support.USERS_ENV_VAR, "grace:a long password:admin")
    app = create_web_app(_ctx(sqlite_db), secret_key="k", bootstrap_users=True)
    client = TestClient(app, base_url="http://testserver")
    form = client.get("/console/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    signed_in = client.post("/console/login", data={"csrf_token": csrf, "username": "grace",
                                                    "password": "a long password"}, follow_redirects=False)
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/console")
    home = client.get("/console")
    assert "Find a customer" in home.text and "grace" in home.text
    # Without the sign-in form's token, even the right password is refused.
    fresh = TestClient(app)
    assert fresh.post("/console/login", data={"username": "grace", "password": "a long password"},
                      follow_redirects=False).status_code == 403


# --- the audit log ------------------------------------------------------------------------------


def test_an_audited_action_records_who_what_why_and_how_it_ended(db):
    ctx = _ctx(db)
    with db.transaction() as session:
        staff = support.create_support_user(session, username="alice", password="long password", role="support",
                                            now=NOW)

    result = support.run_audited(ctx, staff, action="credits.promo_grant", summary="Granted 5 credits",
                                 reason="  goodwill  ", customer_id="cus_1", work=lambda: 42,
                                 describe=lambda value: f"lot {value}")
    assert result == 42
    with pytest.raises(PaymentFailed):
        support.run_audited(ctx, staff, action="invoice.refund", summary="Refund", reason="duplicate",
                            customer_id="cus_1", work=_declined)
    with pytest.raises(InvalidRequest, match="reason"):
        support.run_audited(ctx, staff, action="invoice.refund", summary="Refund", reason="   ",
                            customer_id="cus_1", work=lambda: pytest.fail("ran without a reason"))

    with db.transaction(readonly=True) as session:
        records = support.list_audit(session, customer_id="cus_1")
        assert [(r.action, r.actor, r.reason, r.outcome, r.message) for r in records] == [
            ("invoice.refund", "alice", "duplicate", "failed", "Your card was declined."),
            ("credits.promo_grant", "alice", "goodwill", "succeeded", "lot 42"),
        ]
        assert all(r.created_at == NOW and r.completed_at == NOW for r in records)
        assert support.list_audit(session, customer_id="cus_1", before=records[0].seq) == records[1:]
        assert session.scalar(select(AuditRecord).where(AuditRecord.outcome == "pending")) is None


def _declined():
    raise PaymentFailed("Your card was declined.", code="payment_failed")


# --- sessions -----------------------------------------------------------------------------------


def _request(cookies: dict[str, str]) -> Request:
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [(b"cookie", header.encode())],
                    "scheme": "http", "server": ("testserver", 80), "query_string": b""})


def _cookie(response: Response, name: str) -> str:
    header = next(v for k, v in response.raw_headers if k == b"set-cookie" and v.startswith(name.encode()))
    return header.decode().split(";")[0].split("=", 1)[1]


def test_a_session_cookie_is_signed_bound_to_its_purpose_and_expires(monkeypatch):
    billing = SessionCodec("secret", cookie="cf_billing", path="/billing", max_age=3600)
    session = billing.start()
    session.customer = "cus_A"
    response = Response()
    billing.save(response, _request({}), session)
    value = _cookie(response, "cf_billing")

    loaded = billing.load(_request({"cf_billing": value}))
    assert (loaded.customer, loaded.csrf) == ("cus_A", session.csrf)
    # Edited, signed with another key, or presented as another kind of session: refused.
    payload, signature = value.rsplit(".", 1)
    edited = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).replace(b"cus_A", b"cus_B")).decode().rstrip("=")
    assert edited != payload
    assert billing.load(_request({"cf_billing": f"{edited}.{signature}"})) is None
    assert billing.load(_request({"cf_billing": value[:-3] + "abc"})) is None
    other_key = SessionCodec("other", cookie="cf_billing", path="/billing", max_age=3600)
    assert other_key.load(_request({"cf_billing": value})) is None
    console = SessionCodec("secret", cookie="cf_console", path="/console", max_age=3600)
    assert console.load(_request({"cf_console": value})) is None
    # Expired: the expiry is inside the signed payload.
    import creditflow.web.security as security

    monkeypatch.setattr(security.time, "time", lambda: session.expires + 1)
    assert billing.load(_request({"cf_billing": value})) is None


def test_rewriting_a_session_never_extends_it(monkeypatch):
    import creditflow.web.security as security

    codec = SessionCodec("secret", cookie="cf_billing", path="/billing", max_age=3600)
    monkeypatch.setattr(security.time, "time", lambda: 1_000_000)
    session = codec.start()
    monkeypatch.setattr(security.time, "time", lambda: 1_000_000 + 3000)
    session.flash = {"kind": "success", "text": "done"}
    response = Response()
    codec.save(response, _request({}), session)
    reloaded = codec.load(_request({"cf_billing": _cookie(response, "cf_billing")}))
    assert reloaded.expires == 1_000_000 + 3600
    assert "Max-Age=600" in next(v.decode() for k, v in response.raw_headers if k == b"set-cookie")


def test_sign_in_is_throttled_per_username(monkeypatch):
    import creditflow.web.security as security

    clock = [100.0]
    monkeypatch.setattr(security.time, "monotonic", lambda: clock[0])
    throttle = LoginThrottle(limit=3, window=60)
    for _ in range(3):
        assert not throttle.blocked("alice")
        throttle.failed("Alice ")
    assert throttle.blocked("alice") and not throttle.blocked("bob")
    clock[0] += 61
    assert not throttle.blocked("alice")
    throttle.failed("alice")
    throttle.succeeded("alice")
    assert not throttle.blocked("alice")


# --- the invoice PDF ------------------------------------------------------------------------------


def _pdf_text(pdf: bytes) -> str:
    text = ""
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            text += zlib.decompress(stream).decode("latin-1")
        except zlib.error:
            text += stream.decode("latin-1")
    return text


def test_the_invoice_pdf_has_the_number_lines_and_totals():
    at = datetime(2026, 2, 14, 10, tzinfo=timezone.utc)
    invoice = SimpleNamespace(
        id="inv_1", number=42, status="paid", purpose="plan_change", currency="usd", created_at=at, paid_at=at,
        period_start=at, period_end=datetime(2026, 3, 14, 10, tzinfo=timezone.utc), subtotal=3500, tax=0,
        total=3500, balance_applied=0, amount_paid=3500, amount_refunded=0, seller=None, bill_to=None,
        lines=[SimpleNamespace(kind="new_plan", description="Ultimate plan, monthly", amount=5000, period_start=at,
                               period_end=datetime(2026, 3, 14, 10, tzinfo=timezone.utc)),
               SimpleNamespace(kind="unused_time", description="Unused time on Standard (monthly)", amount=-1500, period_start=None,
                               period_end=None)])
    customer = SimpleNamespace(id="cus_1", name="Zoë Žukauskaitė 山田", email="zoe@example.com")

    pdf = render_invoice_pdf(invoice, customer, title="Plan change: Ultimate plan, monthly")
    assert pdf.startswith(b"%PDF-") and invoice_filename(invoice) == "invoice-000042.pdf"
    text = _pdf_text(pdf)
    for expected in ("Invoice 000042", "PAID", "Ultimate plan, monthly", "$50.00", "-$15.00", "$35.00",
                     "14 Feb 2026 - 14 Mar 2026", "zoe@example.com", "Zukauskaite"):
        assert expected in text, expected


# --- words and numbers on the page -----------------------------------------------------------------


@pytest.mark.parametrize("error, expected", [
    (PaymentFailed("Your card was declined.", code="payment_failed"),
     "We couldn't take the payment: your card was declined. Nothing was charged and nothing changed."),
    (PaymentFailed("The customer has no payment method.", code="payment_failed"),
     "We couldn't take the payment: there's no payment method on file. Nothing was charged and nothing changed."),
    (Conflict("the quote expired; preview the change again", code="quote_expired"),
     "This price was only valid for a limited time and has expired. Nothing was charged and nothing changed. "
     "Here is the current price."),
    (Conflict("something else went wrong", code="whatever"), "Something else went wrong."),
])
def test_errors_are_said_in_plain_words(error, expected):
    assert plain(error) == expected


def test_amounts_credits_and_dates_are_shown_in_the_viewers_terms():
    fmt = Formatter("usd", "America/New_York")
    assert fmt.money(123456) == "$1,234.56" and fmt.money(-1500) == "-$15.00"
    assert fmt.credits(Credits(73500)) == "73.5" and fmt.credits(Credits.whole(100000)) == "100,000"
    assert fmt.credits("1234.25") == "1,234.25" and fmt.credits(-2500) == "-2.5"
    # 1 February 03:00 UTC is still 31 January in New York.
    assert fmt.date(datetime(2026, 2, 1, 3, tzinfo=timezone.utc)) == "31 Jan 2026"
    assert fmt.datetime(datetime(2026, 2, 1, 3, tzinfo=timezone.utc)) == "31 Jan 2026, 22:00 EST"
