"""Emails to customers: queued by the worker from the events outbox, sent over SMTP.

Queueing. Each event is looked at once (`events.notified`): the ones a customer must hear about
(a payment received, a renewal that failed, a payment to authenticate, a scheduled change, a
cancellation, a refund, a price moved by the operator, an invitation to a team, which goes to the
person invited) become an `emails` row in the transaction that marks the event, keyed by the
event, so nothing is queued twice. A yearly plan gets a reminder 7 days before it
renews, keyed by the subscription and the end of the term.

Sending. A due email is claimed (`sending`, for `LEASE`) and committed, sent outside any
transaction, then recorded `sent`. A crash between sending and recording leaves it claimed; when
the lease ends it is sent again: at most one duplicate, with the same Message-ID, by which a mail
client or an operator recognises it. A failed send is retried with backoff and given up
(`failed`) after `MAX_ATTEMPTS`. An email whose subject is gone by the time it would leave (an
invitation accepted or revoked meanwhile) is `dropped`.

Without `CREDITFLOW_SMTP_URL` and `CREDITFLOW_EMAIL_FROM` events are still marked as looked at
and nothing is queued: nothing piles up, and setting SMTP up later sends no backlog of old news.
"""

from __future__ import annotations

import logging
import os
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined, TemplateNotFound
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from creditflow.context import Context
from creditflow.customer.billing import bill_to
from creditflow.customer.models import Customer
from creditflow.events.models import Event
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.pdf import invoice_filename, render_invoice_pdf
from creditflow.invoicing.tax import price, treatment_for
from creditflow.kit.ids import new_id
from creditflow.kit.money import format_money
from creditflow.notify.models import Email
from creditflow.portal.service import PAGE_PATH, create_portal_session
from creditflow.subscription.models import Subscription
from creditflow.subscription.price import next_renewal_price
from creditflow.team import service as team
from creditflow.team.models import TeamMember

log = logging.getLogger("creditflow.emails")

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8
REMINDER_AHEAD = timedelta(days=7)
LINK_TTL = timedelta(days=7)
BATCH = 100
PURPOSE_TITLES = {"subscription_create": "Subscription", "renewal": "Renewal", "plan_change": "Plan change",
                  "top_up": "Credit top-up"}


# -- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mailer:
    """Where and how emails leave, from `CREDITFLOW_SMTP_URL` (`smtp://[user:password@]host:port`,
    `smtps://` for TLS from the start, `?starttls=1` to upgrade a plain connection) and
    `CREDITFLOW_EMAIL_FROM`. `CREDITFLOW_EMAIL_TEMPLATES` names a folder whose templates replace
    the shipped ones of the same name; links to the billing page need `CREDITFLOW_PUBLIC_URL`
    and `CREDITFLOW_SECRET_KEY` (the API's)."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    starttls: bool = False
    templates: str | None = None
    public_url: str | None = None
    secret_key: str | None = None
    timeout: float = 10.0

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Mailer | None":
        env = os.environ if env is None else env
        url, sender = (env.get("CREDITFLOW_SMTP_URL") or "").strip(), (env.get("CREDITFLOW_EMAIL_FROM") or "").strip()
        if not url or not sender:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"CREDITFLOW_SMTP_URL must look like smtp://user:password@host:587, got {url!r}")
        return cls(host=parts.hostname, port=parts.port or (465 if parts.scheme == "smtps" else 25), sender=sender,
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None,
                   ssl=parts.scheme == "smtps", starttls="starttls=1" in (parts.query or ""),
                   templates=env.get("CREDITFLOW_EMAIL_TEMPLATES") or None,
                   public_url=(env.get("CREDITFLOW_PUBLIC_URL") or "").rstrip("/") or None,
                   secret_key=env.get("CREDITFLOW_SECRET_KEY") or None)


# -- queueing ---------------------------------------------------------------------------------


def _kind_of(event: Event) -> str | None:
    """The email an event calls for, if any."""
    data = event.data or {}
    if event.type == "invoice.paid":
        return "receipt" if data.get("amount_paid") else None  # nothing was charged: no receipt
    if event.type == "invoice.payment_failed":
        return "payment_failed"
    if event.type == "invoice.payment_action_required":
        return "action_required"
    return {"subscription.change_scheduled": "change_scheduled", "subscription.canceled": "cancellation",
            "refund.created": "refund", "subscription.price_changing": "price_changing",
            "member.invited": "team_invite"}.get(event.type)


def queue_from_events(session: Session, now: datetime, *, enabled: bool, batch: int = 500) -> int:
    """Look at events not yet looked at; queue the emails they call for (when `enabled`)."""
    query = select(Event).where(Event.notified.is_(False)).order_by(Event.seq).limit(batch)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    events = list(session.scalars(query))
    queued = 0
    for event in events:
        kind = _kind_of(event) if enabled and event.customer_id else None
        if kind == "payment_failed" and not _is_renewal(session, event.data.get("invoice")):
            kind = None  # a purchase declined on the page or through the app: the user is there
        if kind is not None:
            to = event.data.get("email") if kind == "team_invite" else None  # to the person invited
            queued += _queue(session, kind, f"event:{event.id}", event.customer_id, dict(event.data), now, to=to)
    if events:
        session.execute(update(Event).where(Event.seq.in_([event.seq for event in events])).values(notified=True))
    return queued


def queue_renewal_reminders(session: Session, now: datetime, test_clock_id: str | None, *,
                            send_at: datetime | None = None) -> int:
    """A reminder for each yearly plan renewing within 7 days (once per term), to send at
    `send_at` (real time: on a test clock `now` is the clock's, and sending follows real time)."""
    clock = Subscription.test_clock_id.is_(None) if test_clock_id is None else Subscription.test_clock_id == test_clock_id
    due = session.scalars(select(Subscription).where(
        clock, Subscription.term == "yearly", Subscription.status == "active",
        Subscription.cancel_at_period_end.is_(False), Subscription.current_term_end > now,
        Subscription.current_term_end <= now + REMINDER_AHEAD))
    queued = 0
    for sub in due:
        key = f"renewal_reminder:{sub.id}:{sub.current_term_end:%Y%m%dT%H%M%S}"
        queued += _queue(session, "renewal_reminder", key, sub.customer_id,
                         {"subscription": sub.id, "renews_at": sub.current_term_end.isoformat()}, send_at or now)
    return queued


def next_reminder_due(session: Session, test_clock_id: str | None, after: datetime) -> datetime | None:
    """When the next reminder falls due strictly after `after`, so a test clock stops there."""
    clock = Subscription.test_clock_id.is_(None) if test_clock_id is None else Subscription.test_clock_id == test_clock_id
    ends = session.scalars(select(Subscription.current_term_end).where(
        clock, Subscription.term == "yearly", Subscription.status == "active",
        Subscription.current_term_end > after + REMINDER_AHEAD).order_by(Subscription.current_term_end).limit(1))
    end = ends.first()
    return None if end is None else end - REMINDER_AHEAD


def _queue(session: Session, kind: str, key: str, customer_id: str, data: dict, now: datetime, *,
           to: str | None = None) -> int:
    """Queue one email about `customer_id`, to the customer unless `to` says otherwise."""
    if session.scalar(select(Email.id).where(Email.dedupe_key == key)) is not None:
        return 0
    customer = session.get(Customer, customer_id)
    if customer is None or not (to or customer.email):
        return 0
    email_id = new_id("em")
    session.add(Email(id=email_id, dedupe_key=key, kind=kind, customer_id=customer_id, to_address=to or customer.email,
                      data=data, status="pending", attempts=0, next_attempt_at=now,
                      message_id=make_msgid(idstring=email_id, domain="creditflow"), created_at=now))
    return 1


def _is_renewal(session: Session, invoice_id: str | None) -> bool:
    invoice = session.get(Invoice, invoice_id) if invoice_id else None
    return invoice is not None and invoice.purpose == "renewal"


# -- rendering --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    attachments: tuple[tuple[str, str, bytes], ...] = ()  # (file name, MIME type, content)


def environment(templates: str | None) -> Environment:
    """The shipped templates, each replaceable by a file of the same name in `templates`."""
    loaders = [FileSystemLoader(templates)] if templates else []
    loaders.append(PackageLoader("creditflow.notify", "templates"))
    return Environment(loader=ChoiceLoader(loaders), autoescape=lambda name: bool(name) and name.endswith(".html"),
                       undefined=StrictUndefined, keep_trailing_newline=False)


def render(env: Environment, kind: str, context: dict[str, Any], language: str = "en") -> tuple[str, str, str]:
    """Subject, text and HTML of an email, in `language` where its templates exist ("pt-BR", then
    "pt"), else English."""
    for lang in dict.fromkeys((language, language.split("-")[0], "en")):
        try:
            parts = [env.get_template(f"{lang}/{kind}.{ext}").render(**context) for ext in ("subject", "txt", "html")]
        except TemplateNotFound:
            continue
        return " ".join(parts[0].split()), parts[1].strip() + "\n", parts[2]
    raise TemplateNotFound(f"en/{kind}")


def compose(ctx: Context, session: Session, email: Email, mailer: Mailer, now: datetime) -> Rendered:
    """What to send: the templates filled from the current state of what the email is about."""
    customer = session.get(Customer, email.customer_id)
    currency = customer.currency

    def money(amount: int) -> str:
        return format_money(amount, currency)

    seller = ctx.catalog.seller.name if ctx.catalog.seller else "creditflow"
    context: dict[str, Any] = {"customer": customer, "money": money, "seller": seller, "link": None,
                               "link_label": "Open your billing page", "link_expires": "", "recipient": None}
    data, attachments = email.data, []
    invoice = session.get(Invoice, data["invoice"]) if data.get("invoice") else None
    if invoice is not None:
        context["invoice"] = _invoice_view(invoice)
    if email.kind == "receipt" and invoice is not None:
        attachments.append((invoice_filename(invoice), "application/pdf",
                            render_invoice_pdf(invoice, customer, title=context["invoice"]["title"], seller=seller)))
    elif email.kind == "payment_failed":
        context["failure"] = data.get("failure_message")
        sub = session.get(Subscription, invoice.subscription_id) if invoice and invoice.subscription_id else None
        context["next_retry"] = _day(sub.next_retry_at) if sub is not None and sub.next_retry_at else None
        context["link_label"] = "Fix your card"
    elif email.kind == "action_required":
        context["link_label"] = "Confirm the payment"
    elif email.kind == "renewal_reminder":
        sub = session.get(Subscription, data["subscription"])
        plan = ctx.catalog.plan(sub.plan)  # the price as sold, not the catalog's today
        renewal = price([next_renewal_price(sub, ctx.catalog)], treatment_for(ctx.catalog, bill_to(customer)))
        context.update(plan=plan.name, renews_on=_day(datetime.fromisoformat(data["renews_at"])), amount=renewal.total)
    elif email.kind == "change_scheduled":
        context.update(plan=ctx.catalog.plan(data["plan"]).name, term=data["term"],
                       effective_on=_day(datetime.fromisoformat(data["effective_at"].replace("Z", "+00:00"))),
                       amount=data.get("amount_due_then"))
    elif email.kind == "cancellation":
        sub = session.get(Subscription, data["subscription"])
        context.update(plan=ctx.catalog.plan(sub.plan).name,
                       ends_on=_day(datetime.fromisoformat(data["ends_at"].replace("Z", "+00:00"))))
    elif email.kind == "refund":
        context["amount"] = data["amount"]
    elif email.kind == "price_changing":
        context.update(plan=ctx.catalog.plan(data["plan"]).name, term=data["term"], old_price=data["old_price"],
                       new_price=data["new_price"],
                       effective_on=_day(datetime.fromisoformat(data["effective_at"].replace("Z", "+00:00"))))
    elif email.kind == "team_invite":
        _invitation(session, data, mailer, context, now)
    if email.kind in ("payment_failed", "action_required", "renewal_reminder", "change_scheduled", "cancellation",
                      "price_changing") \
            and mailer.public_url and mailer.secret_key:
        portal, token = create_portal_session(session, customer_id=customer.id, return_url=None,
                                              secret_key=mailer.secret_key, now=now, ttl=LINK_TTL)
        context.update(link=f"{mailer.public_url}{PAGE_PATH}{token}", link_expires=_day(portal.expires_at))
    subject, text, html = render(environment(mailer.templates), email.kind, context, customer.language or "en")
    return Rendered(subject, text, html, tuple(attachments))


class NotToSend(Exception):
    """What the email was about is gone (an invitation accepted, revoked or expired before it
    left): it is dropped, not retried."""


def _invitation(session: Session, data: dict, mailer: Mailer, context: dict[str, Any], now: datetime) -> None:
    member = session.get(TeamMember, data["member"])
    if member is None or member.status != "invited" or member.invite_expires_at <= now:
        raise NotToSend(f"the invitation {data['member']} is no longer open")
    owner = context["customer"]
    context.update(recipient=member.email, team=owner.name or owner.email, role=member.role,
                   expires_on=_day(member.invite_expires_at), link_label="Accept the invitation")
    if mailer.public_url and mailer.secret_key:
        token = team.invitation_token(mailer.secret_key, member.id, member.invite_expires_at)
        if team.is_invitation_token(member, token):  # made with this secret: the link works
            context.update(link=f"{mailer.public_url}{team.INVITE_PATH}{token}",
                           link_expires=_day(member.invite_expires_at))


def _invoice_view(invoice: Invoice) -> dict[str, Any]:
    first = invoice.lines[0].description if invoice.lines else ""
    label = PURPOSE_TITLES.get(invoice.purpose, invoice.purpose)
    return {"number": f"{invoice.number:06d}", "title": f"{label}: {first}" if first else label,
            "lines": invoice.lines, "total": invoice.total, "amount_paid": invoice.amount_paid,
            "due": invoice.total - invoice.balance_applied - invoice.amount_paid}


def _day(dt: datetime) -> str:
    return f"{dt.day} {dt:%B %Y}"


# -- sending ----------------------------------------------------------------------------------


def claim_due(session: Session, now: datetime, *, batch: int = BATCH) -> list[str]:
    """Claim pending emails that are due, and claimed ones whose sender vanished."""
    query = (select(Email.id).where(Email.status.in_(("pending", "sending")), Email.next_attempt_at <= now)
             .order_by(Email.next_attempt_at).limit(batch))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(session.scalars(query))
    if ids:
        session.execute(update(Email).where(Email.id.in_(ids)).values(status="sending", next_attempt_at=now + LEASE))
    return ids


def send_message(mailer: Mailer, email: Email, rendered: Rendered) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = mailer.sender, email.to_address, rendered.subject
    message["Message-ID"] = email.message_id
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    for name, mime, content in rendered.attachments:
        maintype, subtype = mime.split("/", 1)
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    connect = smtplib.SMTP_SSL if mailer.ssl else smtplib.SMTP
    with connect(mailer.host, mailer.port, timeout=mailer.timeout) as smtp:
        if mailer.starttls:
            smtp.starttls()
        if mailer.username:
            smtp.login(mailer.username, mailer.password or "")
        smtp.send_message(message)


def retry_delay(attempts: int) -> timedelta:
    """1 minute, then 5, 30, 2 h, 6 h, 12 h, 24 h."""
    steps = (1, 5, 30, 120, 360, 720, 1440)
    return timedelta(minutes=steps[min(attempts, len(steps)) - 1])


def send_due(ctx: Context, mailer: Mailer, now: datetime, *, batch: int = BATCH) -> int:
    """Send what is due; returns how many were sent."""
    ids = ctx.db.run(lambda session: claim_due(session, now, batch=batch))
    sent = 0
    for email_id in ids:
        try:
            with ctx.db.transaction() as session:  # the email's link is a portal session: committed first
                email = session.get(Email, email_id)
                rendered = compose(ctx, session, email, mailer, now)
                session.expunge(email)
            send_message(mailer, email, rendered)
        except NotToSend as gone:
            why = str(gone)
            ctx.db.run(lambda session: _record_dropped(session, email_id, why))
            continue
        except Exception as exc:  # any failure (SMTP, a broken template) is retried later, and logged
            log.warning("email %s not sent: %s", email_id, exc)
            error = f"{type(exc).__name__}: {exc}"[:500]
            ctx.db.run(lambda session: _record_failure(session, email_id, error, now))
            continue
        ctx.db.run(lambda session: _record_sent(session, email_id, rendered.subject, now))
        sent += 1
    return sent


def _record_sent(session: Session, email_id: str, subject: str, now: datetime) -> None:
    email = session.get(Email, email_id, with_for_update=True)
    email.status, email.subject, email.sent_at = "sent", subject[:300], now
    email.attempts += 1


def _record_dropped(session: Session, email_id: str, reason: str) -> None:
    email = session.get(Email, email_id, with_for_update=True)
    email.status, email.last_error = "dropped", reason[:500]


def _record_failure(session: Session, email_id: str, error: str, now: datetime) -> None:
    email = session.get(Email, email_id, with_for_update=True)
    email.attempts += 1
    email.last_error = error
    if email.attempts >= MAX_ATTEMPTS:
        email.status = "failed"
    else:
        email.status, email.next_attempt_at = "pending", now + retry_delay(email.attempts)


# -- the worker's jobs ------------------------------------------------------------------------


def run(ctx: Context, now: datetime, test_clock_id: str | None, mailer: Mailer | None = None) -> int:
    """Queue and send. Events and sending follow real time; reminders follow each clock."""
    mailer = mailer if mailer is not None else Mailer.from_env()
    done = 0
    if mailer is not None:
        wall = now if test_clock_id is None else ctx.clock.now()
        done += ctx.db.run(lambda session: queue_renewal_reminders(session, now, test_clock_id, send_at=wall))
    if test_clock_id is not None:
        return done
    done += ctx.db.run(lambda session: queue_from_events(session, now, enabled=mailer is not None))
    if mailer is not None:
        done += send_due(ctx, mailer, now)
    return done


def template_names() -> list[str]:
    """The shipped templates, for operators writing their own."""
    root = Path(__file__).parent / "templates"
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
