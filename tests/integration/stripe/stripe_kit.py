"""The harness for the Stripe tests: a flaky HTTP client for the SDK and a customer story that
reads both creditflow and localstripe. Fixtures are in conftest.py."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import stripe
from sqlalchemy import func, select

from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.wiring import stripe_customer_of_attempt
from creditflow.credits.models import CreditLot
from creditflow.customer.models import Customer
from creditflow.customer.service import create_customer, create_test_clock
from creditflow.purchase.payment_method import set_payment_method
from creditflow.invoicing.models import Invoice
from creditflow.kit.clock import FixedClock
from creditflow.payment.models import PaymentAttempt
from creditflow.payment.stripe_gateway import StripeGateway
from creditflow.refund.models import Refund
from creditflow.subscription.models import Subscription
from creditflow.worker.testclock import advance_test_clock

API_KEY = "sk_test_creditflow"
CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"  # localstripe (and Stripe) refuse to attach it
CARD_DECLINES_CHARGES = "4000000000000341"  # attaches, then every charge is declined


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


class FlakyNetwork(stripe.RequestsClient):
    """An HTTP client for the SDK that can lose a request's answer: armed for a method and path,
    it forwards the request to the server and then raises a timeout instead of returning the
    response (`after=True`), or raises before sending anything (`after=False`)."""

    def __init__(self):
        super().__init__(timeout=10)
        self._armed: tuple[str, str, bool] | None = None
        self.lost: list[str] = []

    def lose_next(self, method: str, path: str, *, after: bool = True) -> None:
        self._armed = (method.lower(), path, after)

    def request(self, method, url, headers, post_data=None):
        armed = self._armed
        if armed is None or method.lower() != armed[0] or not url.split("?")[0].endswith(armed[1]):
            return super().request(method, url, headers, post_data)
        self._armed = None
        if armed[2]:
            super().request(method, url, headers, post_data)  # Stripe gets it and acts on it
        self.lost.append(f"{method.upper()} {armed[1]}")
        raise stripe.APIConnectionError("Request to Stripe timed out (injected)", should_retry=True)


class StripeStory:
    """One customer of the real engine, paying through the Stripe gateway at localstripe."""

    def __init__(self, db, admin: stripe.StripeClient, base_url: str, start: datetime, *,
                 card: str | None = CARD_OK, clock: bool = True):
        self.db = db
        self.admin = admin
        self.network = FlakyNetwork()
        self.gateway = StripeGateway(API_KEY, api_base=base_url, customer_for_key=stripe_customer_of_attempt(db),
                                     http_client=self.network)
        self.ctx = Context(db=db, catalog=load_catalog(), gateway=self.gateway, clock=FixedClock(start))
        with db.transaction() as session:
            self.clock_id = create_test_clock(session, start, now=start).id if clock else None
            self.customer_id = create_customer(
                self.ctx, session, external_id=f"stripe-{uuid.uuid4().hex[:10]}",
                email=f"{uuid.uuid4().hex[:10]}@example.com", test_clock=self.clock_id).id
        if card is not None:
            self.pay_with(card)

    # -- acting ---------------------------------------------------------------------------------

    def new_card(self, number: str) -> str:
        """A Stripe PaymentMethod for a test card number, as Stripe.js would have made it."""
        return self.admin.v1.payment_methods.create(params={
            "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}).id

    def pay_with(self, number: str) -> str:
        token = self.new_card(number)
        set_payment_method(self.ctx, self.customer_id, token)
        return token

    def advance(self, to: datetime) -> None:
        advance_test_clock(self.ctx, self.clock_id, to)

    # -- reading creditflow -----------------------------------------------------------------------

    def customer(self) -> Customer:
        with self.db.transaction(readonly=True) as session:
            return session.get(Customer, self.customer_id)

    def sub(self, sub_id: str) -> Subscription:
        with self.db.transaction(readonly=True) as session:
            return session.get(Subscription, sub_id)

    def subscriptions(self) -> list[Subscription]:
        with self.db.transaction(readonly=True) as session:
            return list(session.scalars(select(Subscription).where(Subscription.customer_id == self.customer_id)))

    def invoices(self) -> list[Invoice]:
        with self.db.transaction(readonly=True) as session:
            return list(session.scalars(
                select(Invoice).where(Invoice.customer_id == self.customer_id).order_by(Invoice.number)))

    def attempts(self) -> list[PaymentAttempt]:
        with self.db.transaction(readonly=True) as session:
            return list(session.scalars(
                select(PaymentAttempt).where(PaymentAttempt.customer_id == self.customer_id)
                .order_by(PaymentAttempt.created_at, PaymentAttempt.id)))

    def refunds(self) -> list[Refund]:
        with self.db.transaction(readonly=True) as session:
            return list(session.scalars(
                select(Refund).where(Refund.customer_id == self.customer_id).order_by(Refund.created_at)))

    def lot(self, lot_id: str) -> CreditLot:
        with self.db.transaction(readonly=True) as session:
            return session.get(CreditLot, lot_id)

    def plan_credits(self) -> int:
        """Whole credits left in live plan-credit lots."""
        with self.db.transaction(readonly=True) as session:
            total = session.scalar(select(func.coalesce(func.sum(CreditLot.remaining), 0)).where(
                CreditLot.customer_id == self.customer_id, CreditLot.kind == "subscription",
                CreditLot.expired_at.is_(None)))
        return (total.milli if hasattr(total, "milli") else int(total)) // 1000

    # -- reading Stripe -----------------------------------------------------------------------------

    @property
    def stripe_customer(self) -> str:
        return self.customer().gateway_customer_id

    def intents(self) -> list:
        """Every PaymentIntent Stripe has for this customer, oldest first."""
        customer = self.stripe_customer
        if customer is None:
            return []
        found = [pi for pi in self.admin.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
                 if pi.customer == customer]
        return sorted(found, key=lambda pi: pi.created)

    def charged(self) -> list[int]:
        """What Stripe actually took from the customer, in order."""
        return [pi.amount for pi in self.intents() if pi.status == "succeeded"]

    def stripe_refunds(self, intent_id: str) -> list[int]:
        return sorted(r.amount for r in self.admin.v1.refunds.list(
            params={"payment_intent": intent_id, "limit": 100}).auto_paging_iter())
