"""Emails to customers through a real SMTP server (aiosmtpd): what the customer must hear about
is sent once, with its links and attachments; a failed send is retried; no SMTP, no queue."""

from __future__ import annotations

import email
import email.policy
import io
import socket
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pdfplumber
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.customer.service import create_customer, create_test_clock
from creditflow.events.models import Event
from creditflow.kit.clock import FixedClock
from creditflow.notify import service as emails
from creditflow.notify.models import Email
from creditflow.payment.sandbox import SandboxGateway
from creditflow.purchase.cancel import cancel_subscription
from creditflow.purchase.payment_method import set_payment_method
from creditflow.purchase.refund import create_refund
from creditflow.purchase.subscribe import subscribe
from creditflow.worker.testclock import advance_test_clock

START = datetime(2026, 3, 10, 10, tzinfo=timezone.utc)


class Inbox:
    """A real SMTP server on a free port, keeping what it receives."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.refuse = 0  # answer this many messages with a temporary failure
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.refuse:
                self.refuse -= 1
                return "451 try again later"
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def inbox():
    box = Inbox()
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        box.port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def shop(sqlite_db, inbox):
    ctx = Context(db=sqlite_db, catalog=load_catalog(), gateway=SandboxGateway(sqlite_db), clock=FixedClock(START))
    mailer = emails.Mailer(host="127.0.0.1", port=inbox.port, sender="Billing <billing@example.com>",
                           public_url="https://billing.example.com", secret_key="s3cret")
    with sqlite_db.transaction() as session:
        clock_id = create_test_clock(session, START, now=START).id
        customer_id = create_customer(ctx, session, external_id=f"ada-{uuid.uuid4().hex[:6]}", email="ada@example.com",
                                      name="Ada", test_clock=clock_id).id
    set_payment_method(ctx, customer_id, "pm_card_ok")
    return ctx, mailer, clock_id, customer_id


def _send(ctx, mailer, now=START) -> int:
    return emails.run(ctx, now, None, mailer=mailer)


def _count(db) -> int:
    with db.transaction(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(Email))


def test_a_receipt_is_sent_once_with_the_invoice_pdf(shop, inbox):
    ctx, mailer, _, customer_id = shop
    subscribe(ctx, customer_id, "standard", "monthly")
    _send(ctx, mailer)
    _send(ctx, mailer)  # the next run sends nothing again
    [receipt] = inbox.messages
    assert receipt["To"] == "ada@example.com" and receipt["From"] == "Billing <billing@example.com>"
    assert receipt["Subject"] == "Receipt for invoice 000001: $30.00 paid"
    assert receipt["Message-ID"].endswith("@creditflow>")
    text = receipt.get_body(("plain",)).get_content()
    assert "we received $30.00 for invoice 000001" in text and "Standard plan, monthly" in text
    assert "Example AI Ltd" in receipt.get_body(("html",)).get_content()
    [attachment] = list(receipt.iter_attachments())
    assert attachment.get_filename() == "invoice-000001.pdf"
    with pdfplumber.open(io.BytesIO(attachment.get_content())) as pdf:
        assert "Invoice 000001" in pdf.pages[0].extract_text()


def test_a_failed_renewal_sends_a_link_to_fix_the_card(shop, inbox):
    ctx, mailer, clock_id, customer_id = shop
    subscribe(ctx, customer_id, "standard", "monthly")
    set_payment_method(ctx, customer_id, "pm_card_declined")
    advance_test_clock(ctx, clock_id, START + timedelta(days=31, minutes=1))
    _send(ctx, mailer)
    failed = [m for m in inbox.messages if m["Subject"].startswith("Your payment of")]
    assert [m["Subject"] for m in failed] == ["Your payment of $30.00 failed"]
    text = failed[0].get_body(("plain",)).get_content()
    assert "We'll try again on 11 April 2026" in text
    link = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Fix your card: "))
    assert link.startswith("https://billing.example.com/billing/session/ps_")


def test_cancellation_scheduled_change_and_refund_are_told(shop, inbox):
    ctx, mailer, _, customer_id = shop
    sub = subscribe(ctx, customer_id, "standard", "monthly")
    cancel_subscription(ctx, sub.id)
    with ctx.db.transaction(readonly=True) as session:
        invoice_id = session.scalar(select(Event.data).where(Event.type == "invoice.paid"))["invoice"]
    create_refund(ctx, invoice_id, reason="goodwill", amount=500)
    _send(ctx, mailer)
    subjects = sorted(m["Subject"] for m in inbox.messages)
    assert subjects == ["Receipt for invoice 000001: $30.00 paid", "Refund of $5.00 issued",
                        "Your subscription is cancelled: it ends on 10 April 2026"]


def test_a_yearly_plan_is_reminded_7_days_ahead_once(shop, inbox, monkeypatch):
    ctx, mailer, clock_id, customer_id = shop
    monkeypatch.setenv("CREDITFLOW_SMTP_URL", f"smtp://127.0.0.1:{inbox.port}")
    monkeypatch.setenv("CREDITFLOW_EMAIL_FROM", "billing@example.com")
    subscribe(ctx, customer_id, "basic", "yearly")
    advance_test_clock(ctx, clock_id, START + timedelta(days=300))
    _send(ctx, mailer)
    assert not [m for m in inbox.messages if "renews" in m["Subject"]]  # not yet
    # Past the renewal: the clock stops 7 days before it on the way, and the reminder is queued then.
    advance_test_clock(ctx, clock_id, START + timedelta(days=366))
    _send(ctx, mailer)
    _send(ctx, mailer)
    reminders = [m for m in inbox.messages if "renews" in m["Subject"]]
    assert [m["Subject"] for m in reminders] == ["Your Basic plan renews on 10 March 2027"]
    assert "for $75.60" in reminders[0].get_body(("plain",)).get_content()
    receipts = [m["Subject"] for m in inbox.messages if m["Subject"].startswith("Receipt")]
    assert receipts == ["Receipt for invoice 000001: $75.60 paid", "Receipt for invoice 000002: $75.60 paid"]


def test_a_refused_send_is_retried_later_and_sent_once(shop, inbox):
    ctx, mailer, _, customer_id = shop
    subscribe(ctx, customer_id, "standard", "monthly")
    inbox.refuse = 1
    assert _send(ctx, mailer) == 1  # queued, not sent
    assert inbox.messages == []
    with ctx.db.transaction(readonly=True) as session:
        [queued] = session.scalars(select(Email)).all()
        assert (queued.status, queued.attempts) == ("pending", 1) and "451" in queued.last_error
    _send(ctx, mailer, START + timedelta(seconds=30))  # before the retry is due: nothing
    assert inbox.messages == []
    _send(ctx, mailer, START + timedelta(minutes=2))
    assert len(inbox.messages) == 1


def test_a_crash_after_sending_sends_one_duplicate_with_the_same_message_id(shop, inbox):
    ctx, mailer, _, customer_id = shop
    subscribe(ctx, customer_id, "standard", "monthly")
    ctx.db.run(lambda session: emails.queue_from_events(session, START, enabled=True))
    [email_id] = ctx.db.run(lambda session: emails.claim_due(session, START))
    with ctx.db.transaction() as session:  # sent, then the process died before recording it
        queued = session.get(Email, email_id)
        rendered = emails.compose(ctx, session, queued, mailer, START)
        session.expunge(queued)
    emails.send_message(mailer, queued, rendered)
    _send(ctx, mailer, START + timedelta(minutes=1))  # still claimed by the dead sender: nothing
    assert len(inbox.messages) == 1
    _send(ctx, mailer, START + emails.LEASE + timedelta(seconds=1))
    first, again = inbox.messages
    assert first["Message-ID"] == again["Message-ID"]
    _send(ctx, mailer, START + timedelta(hours=1))
    assert len(inbox.messages) == 2


def test_without_smtp_nothing_is_queued_and_nothing_piles_up(shop, inbox, monkeypatch):
    ctx, _, _, customer_id = shop
    monkeypatch.delenv("CREDITFLOW_SMTP_URL", raising=False)
    subscribe(ctx, customer_id, "standard", "monthly")
    emails.run(ctx, START, None)
    with ctx.db.transaction(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Event).where(Event.notified.is_(False))) == 0
    assert _count(ctx.db) == 0 and inbox.messages == []


def test_an_operator_template_replaces_the_shipped_one(shop, inbox, tmp_path):
    ctx, mailer, _, customer_id = shop
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "receipt.subject").write_text("Thanks from us: {{ money(invoice.amount_paid) }}")
    subscribe(ctx, customer_id, "standard", "monthly")
    _send(ctx, emails.Mailer(**{**mailer.__dict__, "templates": str(tmp_path)}))
    assert [m["Subject"] for m in inbox.messages] == ["Thanks from us: $30.00"]


def test_smtp_settings_are_read_from_the_environment():
    assert emails.Mailer.from_env({}) is None
    assert emails.Mailer.from_env({"CREDITFLOW_SMTP_URL": "smtp://localhost:25"}) is None  # no sender
    mailer = emails.Mailer.from_env({"CREDITFLOW_SMTP_URL": "smtps://bill%40x.io:p%3Ass@mail.example.com",
                                     "CREDITFLOW_EMAIL_FROM": "billing@x.io"})
    assert (mailer.host, mailer.port, mailer.ssl, mailer.username, mailer.password) == (
        "mail.example.com", 465, True, "bill@x.io", "p:ss")
    with pytest.raises(ValueError, match="CREDITFLOW_SMTP_URL"):
        emails.Mailer.from_env({"CREDITFLOW_SMTP_URL": "http://x", "CREDITFLOW_EMAIL_FROM": "a@b.c"})


def test_a_customer_gets_emails_in_their_language_where_templates_exist(shop, inbox, tmp_path):
    from creditflow.customer.billing import update_billing_details

    ctx, mailer, _, customer_id = shop
    german = tmp_path / "de"
    german.mkdir()
    (german / "receipt.subject").write_text("Beleg für Rechnung {{ invoice.number }}")
    (german / "receipt.txt").write_text("Wir haben {{ money(invoice.amount_paid) }} erhalten.")
    (german / "receipt.html").write_text("<p>Wir haben {{ money(invoice.amount_paid) }} erhalten.</p>")
    mailer = emails.Mailer(**{**mailer.__dict__, "templates": str(tmp_path)})
    with ctx.db.transaction() as session:
        update_billing_details(ctx, session, customer_id, {"language": "de-at"})
    sub = subscribe(ctx, customer_id, "standard", "monthly")  # a receipt: there are German templates for it
    cancel_subscription(ctx, sub.id)  # a cancellation: there are none, so English
    _send(ctx, mailer)
    subjects = [m["Subject"] for m in inbox.messages]
    assert subjects[0] == "Beleg für Rechnung 000001"  # "de-AT" falls back to "de"
    assert "Wir haben $30.00 erhalten." in inbox.messages[0].get_body(("plain",)).get_content()
    assert len(subjects) == 2 and not subjects[1].startswith("Beleg")


def test_a_language_that_is_not_a_tag_is_refused_and_changes_nothing(shop):
    from creditflow.customer.billing import update_billing_details
    from creditflow.customer.models import Customer
    from creditflow.kit.errors import InvalidRequest

    ctx, _, _, customer_id = shop
    with pytest.raises(InvalidRequest) as refused, ctx.db.transaction() as session:
        update_billing_details(ctx, session, customer_id, {"language": "german please", "name": "Ada L."})
    assert refused.value.param == "language"
    with ctx.db.transaction(readonly=True) as session:
        customer = session.get(Customer, customer_id)
        assert (customer.language, customer.name) == (None, "Ada")


def _invite(ctx, customer_id: str, email_address: str, *, secret_key: str | None = "s3cret"):
    from creditflow.team import service as team

    with ctx.db.transaction() as session:
        member, token = team.invite_member(ctx, session, customer_id, email=email_address, role="member",
                                           plan="standard", anchor=START, now=START, secret_key=secret_key)
    return member.id, token


def test_an_invitation_is_emailed_to_the_person_invited_with_the_link_the_api_answered(shop, inbox):
    from creditflow.team import service as team

    ctx, mailer, _, customer_id = shop
    subscribe(ctx, customer_id, "standard", "monthly")
    member_id, token = _invite(ctx, customer_id, "bo@example.com")
    _send(ctx, mailer)
    _send(ctx, mailer)  # once only
    [invitation] = [m for m in inbox.messages if m["To"] == "bo@example.com"]
    assert invitation["Subject"] == "Ada invites you to their team"
    text = invitation.get_body(("plain",)).get_content()
    assert text.startswith("Hello bo@example.com,") and "as a member" in text
    link = f"https://billing.example.com{team.INVITE_PATH}{token}"
    assert link in text and link in invitation.get_body(("html",)).get_content()
    with ctx.db.transaction(readonly=True) as session:
        assert team.find_by_token(session, link.rsplit("/", 1)[1]).id == member_id


def test_an_invitation_revoked_before_its_email_leaves_is_not_sent(shop, inbox):
    from creditflow.team import service as team

    ctx, mailer, _, customer_id = shop
    subscribe(ctx, customer_id, "standard", "monthly")
    member_id, _ = _invite(ctx, customer_id, "cy@example.com")
    emails.run(ctx, START, None, mailer=emails.Mailer(**{**mailer.__dict__, "host": "127.0.0.1", "port": 9}))
    with ctx.db.transaction() as session:  # queued (its first send failed), then revoked
        team.remove_member(session, member_id, now=START)
    with ctx.db.transaction() as session:
        session.execute(Email.__table__.update().values(next_attempt_at=START))
    _send(ctx, mailer)
    assert [m for m in inbox.messages if m["To"] == "cy@example.com"] == []
    with ctx.db.transaction(readonly=True) as session:
        invitation = session.scalar(select(Email).where(Email.kind == "team_invite"))
        assert invitation.status == "dropped" and "no longer open" in invitation.last_error


def test_an_invitation_made_without_the_secret_is_emailed_without_a_link(shop, inbox):
    ctx, mailer, _, customer_id = shop
    subscribe(ctx, customer_id, "standard", "monthly")
    _invite(ctx, customer_id, "di@example.com", secret_key=None)
    _send(ctx, mailer)
    [invitation] = [m for m in inbox.messages if m["To"] == "di@example.com"]
    text = invitation.get_body(("plain",)).get_content()
    assert "Ask Ada for the link to accept it." in text and "https://" not in text
