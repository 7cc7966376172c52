"""What the billing page and the console show, read in one read-only unit of work.

These are read models for the pages: plain data assembled from the tables. The decisions the
page shows are the domain's own: whether cancel, resume, a plan change or a top-up is possible
now and if not why (`subscription.options`, the predicates the use cases check), which plan
cards are upgrades or downgrades (`catalog.rules`), when plan credits next refresh. Every query
is scoped to the one customer the caller names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditflow.customer.service import customer_now
from creditflow.catalog.models import Catalog, Plan
from creditflow.catalog.rules import classify_change
from creditflow.coupon.rules import Target
from creditflow.coupon.service import next_renewal_discount
from creditflow.credits.access import Standing, free_day, gets_free_credits, reset_timezone
from creditflow.credits.models import CreditEntry, CreditLot
from creditflow.customer.models import Customer
from creditflow.customer.billing import bill_to
from creditflow.generation.service import unlimited_windows
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.tax import Priced, price, treatment_for
from creditflow.kit.credits import Credits
from creditflow.kit.errors import CreditflowError, NotFound
from creditflow.kit.periods import Term
from creditflow.payment.attempts import attempts_by_invoice
from creditflow.subscription.models import Quote, Subscription
from creditflow.subscription.options import AllowedActions, allowed_actions, next_plan_grant
from creditflow.subscription.price import next_renewal_price, sold_price

TERM_LABELS = {"monthly": "Monthly", "quarterly": "Quarterly", "yearly": "Yearly"}
TERM_UNITS = {"monthly": "month", "quarterly": "quarter", "yearly": "year"}
STATUS_LABELS = {"active": "Active", "past_due": "Payment overdue", "ended": "Ended",
                 "canceling": "Cancels at period end"}
KIND_LABELS = {"free": "Daily free credits", "subscription": "Plan credits", "top_up": "Top-up credits",
               "promo": "Promotional credits"}
PURPOSE_LABELS = {"subscription_create": "Subscription", "renewal": "Renewal", "plan_change": "Plan change",
                  "top_up": "Credit top-up"}
INVOICE_STATUS_LABELS = {"paid": "Paid", "open": "Open", "void": "Void", "refunded": "Refunded"}
PAGE_SIZE = 20
RESUME_TO_DOWNGRADE = "Resume your subscription to schedule a downgrade."


@dataclass(frozen=True)
class PlanCard:
    plan: Plan
    term: str
    price: int
    per_month: int
    action: str | None  # upgrade | downgrade | subscribe | None (the current plan)
    current: bool = False
    scheduled: bool = False
    unavailable: str | None = None  # why the button is disabled

    @property
    def term_label(self) -> str:
        return TERM_LABELS[self.term]

    @property
    def unit(self) -> str:
        return TERM_UNITS[self.term]


@dataclass(frozen=True)
class TermGroup:
    term: str
    label: str
    saving: str | None
    cards: list[PlanCard]


@dataclass(frozen=True)
class Balance:
    kind: str
    label: str
    amount: Credits
    note: str


@dataclass(frozen=True)
class ScheduledChange:
    plan: Plan
    term: str
    kind: str
    effective_at: datetime
    amount: int

    @property
    def term_label(self) -> str:
        return TERM_LABELS[self.term]


@dataclass
class BillingPage:
    customer: Customer
    now: datetime
    sub: Subscription | None
    plan: Plan | None
    term_groups: list[TermGroup]
    balances: list[Balance]
    total_credits: Credits
    scheduled: ScheduledChange | None
    renewal_amount: int | None
    invoices: list[Invoice]
    more_invoices: bool
    history: list["HistoryLine"]
    actions: AllowedActions
    ended: Subscription | None = None  # the last subscription, if it has ended and none is live
    bundles: list = field(default_factory=list)
    sold_price: int | None = None  # what its plan and term were sold at, per charge (before tax)
    unlimited: list = field(default_factory=list)  # (feature, window): the plan's open unlimited windows

    @property
    def status(self) -> str:
        if self.sub is None:
            return "free"
        if self.sub.status == "active" and self.sub.cancel_at_period_end:
            return "canceling"
        return self.sub.status

    @property
    def status_label(self) -> str:
        return "Free" if self.sub is None else STATUS_LABELS[self.status]

    @property
    def term_label(self) -> str:
        return TERM_LABELS[self.sub.term] if self.sub else ""

    @property
    def changes_blocked(self) -> str | None:
        return self.actions.change.reason if self.sub is not None else None

    @property
    def topup_blocked(self) -> str | None:
        return self.actions.top_up.reason

    @property
    def cancel_blocked(self) -> str | None:
        return self.actions.cancel.reason

    @property
    def plan_notes(self) -> list[str]:
        """Reasons that disable many cards at once: said once, above the cards."""
        if self.changes_blocked:
            return [self.changes_blocked]
        if self.sub is not None and not self.actions.end_of_period_change.allowed:
            return [RESUME_TO_DOWNGRADE + " Upgrades take effect immediately and keep your subscription going."]
        return []

    @property
    def can_resume(self) -> bool:
        return self.sub is not None and self.actions.resume.allowed

    @property
    def can_cancel(self) -> bool:
        """Whether the Cancel control is shown (disabled, saying why, when cancelling is refused):
        on an active subscription that isn't already set to cancel."""
        return self.status == "active"


@dataclass(frozen=True)
class HistoryLine:
    seq: int
    at: datetime
    kind: str
    lot_kind: str | None
    description: str
    amount: Credits  # signed: what it did to the available credits (0 for a settle)
    reference: str | None


# --- reading ---------------------------------------------------------------------------------


def get_customer(session: Session, customer_id: str) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("no such customer", param="customer")
    return customer


def live_subscription(session: Session, customer_id: str) -> Subscription | None:
    return session.scalar(select(Subscription).where(
        Subscription.customer_id == customer_id, Subscription.status.in_(("active", "past_due"))))


def last_ended_subscription(session: Session, customer_id: str) -> Subscription | None:
    return session.scalar(select(Subscription).where(
        Subscription.customer_id == customer_id, Subscription.status == "ended")
        .order_by(Subscription.ended_at.desc()).limit(1))


def billing_page(ctx, session: Session, customer_id: str, *, invoice_limit: int = 5,
                 history_limit: int = 5) -> BillingPage:
    catalog: Catalog = ctx.catalog
    customer = get_customer(session, customer_id)
    now = customer_now(ctx, session, customer_id)
    sub = live_subscription(session, customer_id)
    plan = catalog.plan(sub.plan) if sub else None

    scheduled = None
    renewal_amount = None
    if sub is not None:
        if sub.scheduled_plan:
            target = catalog.plan(sub.scheduled_plan)
            scheduled = ScheduledChange(target, sub.scheduled_term, sub.scheduled_kind, sub.current_term_end,
                                        next_renewal_price(sub, catalog))
        # The price it was sold at (or a moved price from this renewal on), not today's catalog price.
        renewal_amount = next_renewal_price(sub, catalog)
        # Less the subscription's coupon, if it still discounts the next charge; tax included.
        later = next_renewal_discount(session, sub.id, Target(plan=sub.scheduled_plan or sub.plan,
                                                              term=sub.scheduled_term or sub.term),
                                      renewal_amount, new_coupon=None, used_now=False)
        renewal_amount = charge_preview(catalog, customer, renewal_amount, discount=later.amount if later else 0).total

    actions = allowed_actions(sub, now)
    balances, total = credit_balances(ctx, session, customer, sub, now)
    invoices = list_invoices(session, customer_id, limit=invoice_limit + 1)
    return BillingPage(
        customer=customer, now=now, sub=sub, plan=plan,
        term_groups=plan_cards(catalog, sub, actions),
        sold_price=sold_price(sub, catalog) if sub is not None else None,
        balances=balances, total_credits=total, scheduled=scheduled, renewal_amount=renewal_amount,
        invoices=invoices[:invoice_limit], more_invoices=len(invoices) > invoice_limit,
        history=credit_history(session, customer_id, limit=history_limit),
        actions=actions,
        ended=last_ended_subscription(session, customer_id) if sub is None else None,
        bundles=sorted((b for b in catalog.bundles.values() if b.on_sale), key=lambda b: b.price),
        unlimited=unlimited_windows(ctx, session, customer_id),
    )


def plan_cards(catalog: Catalog, sub: Subscription | None, actions: AllowedActions) -> list[TermGroup]:
    """A card for every plan and term, labelled with what choosing it would be, and disabled,
    saying why, when the change can't be made now (the domain's answer, not the page's)."""
    groups = []
    for term in Term:
        cards = []
        for plan in catalog.plans_by_rank():
            if term not in plan.prices:
                continue
            price = plan.price(term)
            current = sub is not None and (sub.plan, sub.term) == (plan.code, term.value)
            if not plan.on_sale and not current:  # kept for its subscribers only: not offered
                continue
            if current:
                price = sold_price(sub, catalog)  # what this customer pays, as sold
            per_month = price // term.months
            scheduled = sub is not None and (sub.scheduled_plan, sub.scheduled_term) == (plan.code, term.value)
            action, unavailable = None, None
            if current:
                pass
            elif sub is None:
                action = "subscribe"
            else:
                try:
                    decision = classify_change(catalog, sub.plan, sub.term, plan.code, term)
                    action = decision.kind
                    if not actions.change.allowed:
                        unavailable = actions.change.reason
                    elif decision.default_timing == "end_of_period" and not actions.end_of_period_change.allowed:
                        unavailable = (RESUME_TO_DOWNGRADE if action == "downgrade"
                                       else actions.end_of_period_change.reason)
                    elif not decision.default_timing:
                        unavailable = "This change is made by our support team; please contact them."
                except CreditflowError as exc:
                    action, unavailable = "unavailable", exc.message[:1].upper() + exc.message[1:] + "."
            cards.append(PlanCard(plan, term.value, price, per_month, action, current, scheduled, unavailable))
        if cards:
            groups.append(TermGroup(term.value, TERM_LABELS[term.value], _saving(catalog, term), cards))
    return groups


def _saving(catalog: Catalog, term: Term) -> str | None:
    """"Save 15%": the sample catalog's discount, read from the lowest plan's prices."""
    if term == Term.monthly:
        return None
    for plan in catalog.plans_by_rank():
        if plan.on_sale and Term.monthly in plan.prices and term in plan.prices:
            full = plan.price(Term.monthly) * term.months
            if full > 0 and plan.price(term) < full:
                percent = round((full - plan.price(term)) * 100 / full)
                return f"Save {percent}%"
    return None


def credit_balances(ctx, session: Session, customer: Customer, sub: Subscription | None,
                    now: datetime) -> tuple[list[Balance], Credits]:
    """Available credits by kind (the ledger's own balance), each with when it refreshes or expires."""
    from creditflow.credits.balance import get_balance

    balance = get_balance(ctx, session, customer.id)
    by_kind = balance.by_kind
    fmt = _formatter(customer)
    fmt_date = fmt.date
    balances: list[Balance] = []

    standing = Standing(sub.plan if sub is not None and sub.status == "active" else None)
    if gets_free_credits(ctx.catalog, standing) or by_kind.get("free"):
        zone = reset_timezone(ctx.catalog, customer.timezone)
        day = free_day(now, zone)
        balances.append(Balance("free", KIND_LABELS["free"], by_kind.get("free", Credits(0)),
                                f"Resets to {fmt.credits(ctx.catalog.free.daily_credits)} every day at midnight "
                                f"({zone}); "
                                f"next on {fmt_date(day.ends_at)}"))

    if sub is not None or by_kind.get("subscription"):
        amount = by_kind.get("subscription", Credits(0))
        grant = next_plan_grant(ctx.catalog, sub)
        if sub is None:
            note = "Left from your last plan"
        elif sub.status == "past_due":
            note = "No new plan credits until the overdue payment goes through."
        elif grant is not None:
            note = f"Refreshes to {fmt.credits(grant.credits)} on {fmt_date(grant.at)}"
            if grant.after_change:  # the scheduled change takes effect then, and its plan's credits with it
                note += f", when your plan changes to {ctx.catalog.plan(grant.plan).name}"
            note += "; unused plan credits don't roll over"
        else:
            note = f"Available until your plan ends on {fmt_date(sub.current_term_end)}"
        balances.append(Balance("subscription", KIND_LABELS["subscription"], amount, note))

    if sub is not None or by_kind.get("top_up"):
        balances.append(Balance("top_up", KIND_LABELS["top_up"], by_kind.get("top_up", Credits(0)), "Never expire"))

    if by_kind.get("promo"):
        expiries = [lot.expires_at for lot in balance.lots if lot.kind == "promo" and lot.expires_at is not None]
        balances.append(Balance("promo", KIND_LABELS["promo"], by_kind["promo"],
                                f"Some expire on {fmt_date(min(expiries))}" if expiries else "Never expire"))

    if by_kind.get("earned"):  # received from other customers by transfers
        balances.append(Balance("earned", "Earned credits", by_kind["earned"], "Never expire"))

    return balances, balance.available


def _formatter(customer: Customer):
    from creditflow.web.rendering import Formatter

    return Formatter(customer.currency, customer.timezone)


def list_invoices(session: Session, customer_id: str, *, limit: int = PAGE_SIZE,
                  before: int | None = None) -> list[Invoice]:
    """The customer's invoices, newest first; `before` is a number from the previous page."""
    query = select(Invoice).where(Invoice.customer_id == customer_id).order_by(Invoice.number.desc()).limit(limit)
    if before is not None:
        query = query.where(Invoice.number < before)
    return list(session.scalars(query))


def customer_invoice(session: Session, customer_id: str, invoice_id: str) -> Invoice:
    """One of *this* customer's invoices; someone else's is as absent as a made-up id."""
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or invoice.customer_id != customer_id:
        raise NotFound("no such invoice", param="invoice")
    return invoice


ATTEMPT_STATUS_LABELS = {"pending": "Processing", "succeeded": "Succeeded", "failed": "Failed",
                         "unknown": "Waiting for the bank"}


@dataclass(frozen=True)
class AttemptLine:
    """A payment attempt as the invoice page shows it."""

    at: datetime
    status: str
    label: str
    amount: int
    currency: str
    failure: str | None  # why it failed, in the gateway's words


def invoice_attempts(session: Session, invoice: Invoice) -> list[AttemptLine]:
    """The invoice's payment attempts, oldest first."""
    return [AttemptLine(a.created_at, a.status, ATTEMPT_STATUS_LABELS.get(a.status, a.status.capitalize()),
                        a.amount, a.currency, a.failure_message if a.status == "failed" else None)
            for a in attempts_by_invoice(session, [invoice.id])[invoice.id]]


def customer_quote(session: Session, customer_id: str, quote_id: str) -> Quote:
    quote = session.get(Quote, quote_id)
    if quote is None or quote.customer_id != customer_id:
        raise NotFound("no such quote", param="quote")
    return quote


def invoice_title(invoice: Invoice) -> str:
    first = invoice.lines[0].description if invoice.lines else ""
    label = PURPOSE_LABELS.get(invoice.purpose, invoice.purpose.replace("_", " ").capitalize())
    return f"{label}: {first}" if first else label


def credit_history(session: Session, customer_id: str, *, limit: int = PAGE_SIZE,
                   before: int | None = None) -> list[HistoryLine]:
    """Ledger entries, newest first; `before` is the `seq` of the last line of the previous page."""
    query = (
        select(CreditEntry, CreditLot.kind, CreditLot.reason, CreditLot.subscription_id, CreditLot.expires_at)
        .outerjoin(CreditLot, CreditLot.id == CreditEntry.lot_id)
        .where(CreditEntry.customer_id == customer_id)
        .order_by(CreditEntry.seq.desc()).limit(limit)
    )
    if before is not None:
        query = query.where(CreditEntry.seq < before)
    rows = session.execute(query).all()
    replaced = _replaced_plan_lots(session, customer_id, rows)
    return [_history_line(entry, lot_kind, lot_reason, replaced=(entry.seq in replaced))
            for entry, lot_kind, lot_reason, _, _ in rows]


def _replaced_plan_lots(session: Session, customer_id: str, rows) -> set[int]:
    """The entries (by seq) that expired plan credits before their time because a plan change
    granted the new plan's credits at that very instant: a replacement, not a loss. (A monthly
    refresh expires them when they were due to; ending or refunding grants nothing new.)"""
    early = {(entry.seq, sub_id, entry.created_at) for entry, kind, _, sub_id, expires_at in rows
             if entry.kind == "expire" and kind == "subscription" and expires_at is not None
             and entry.created_at < expires_at}
    if not early:
        return set()
    granted = set(session.execute(select(CreditLot.subscription_id, CreditLot.created_at).where(
        CreditLot.customer_id == customer_id, CreditLot.kind == "subscription",
        CreditLot.subscription_id.in_({sub_id for _, sub_id, _ in early}),
        CreditLot.created_at.in_({at for _, _, at in early}))).all())
    return {seq for seq, sub_id, at in early if (sub_id, at) in granted}


_SIGNS = {"grant": 1, "refund": 1, "release": 1, "spend": -1, "expire": -1, "hold": -1, "settle": 0}


def _history_line(entry: CreditEntry, lot_kind: str | None, lot_reason: str | None, *,
                  replaced: bool = False) -> HistoryLine:
    source = {"free": "daily free credits", "subscription": "plan credits", "top_up": "top-up credits",
              "promo": "promotional credits", "earned": "earned credits"}.get(lot_kind or "", "credits")
    reference = entry.reference
    if entry.kind == "grant":
        description = {"free": "Daily free credits", "subscription": "Plan credits granted",
                       "top_up": "Top-up credits purchased",
                       "promo": "Promotional credits" + (f": {lot_reason}" if lot_reason else ""),
                       "earned": "Credits received from another customer"}.get(
            lot_kind or "", "Credits granted")
        reference = None  # grant keys are internal
    elif entry.kind == "spend":
        description = f"Spent from {source}"
    elif entry.kind == "expire" and replaced:
        description = "Plan credits replaced by the new plan's credits"
    elif entry.kind == "expire":
        description = f"Expired {source}"
    elif entry.kind == "refund":
        description = f"Refunded to {source}"
    elif entry.kind == "hold":
        description = f"Reserved from {source}"
    elif entry.kind == "release":
        description = f"Reservation released to {source}"
    else:  # settle
        description = "Reserved credits used"
    amount = Credits(entry.amount.milli * _SIGNS.get(entry.kind, 0)) if entry.kind != "settle" else entry.amount
    return HistoryLine(entry.seq, entry.created_at, entry.kind, lot_kind, description, amount, reference)


def charge_preview(catalog: Catalog, customer: Customer, amount: int, *, discount: int = 0) -> Priced:
    """A price as the customer will be charged it: less a discount, with the tax of their billing details."""
    return price([amount], treatment_for(catalog, bill_to(customer)), discount=discount)
