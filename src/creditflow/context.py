"""What every use case needs: the database, the catalog, the gateway and the clock."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from creditflow.catalog.models import Catalog
from creditflow.kit.clock import Clock, SystemClock
from creditflow.kit.db import Database
from creditflow.payment.gateway import Gateway


@dataclass
class Context:
    db: Database
    catalog: Catalog
    gateway: Gateway
    clock: Clock = field(default_factory=SystemClock)

    def now_for(self, session: Session, customer_id: str | None) -> datetime:
        """"Now" for a customer: their test clock's frozen time if they have one (API.md)."""
        from creditflow.customer.models import Customer, TestClock

        if customer_id is not None:
            clock_id = session.scalar(
                Customer.__table__.select().with_only_columns(Customer.test_clock_id)
                .where(Customer.id == customer_id)
            )
            if clock_id is not None:
                return session.get(TestClock, clock_id).frozen_time
        return self.clock.now()


def build_context(db: Database | None = None, catalog_path: str | None = None, gateway: Gateway | None = None,
                  clock: Clock | None = None) -> Context:
    from creditflow.catalog.loader import load_catalog

    db = db or Database()
    return Context(db=db, catalog=load_catalog(catalog_path), gateway=gateway or gateway_from_env(db),
                   clock=clock or SystemClock())


GATEWAYS = ("sandbox", "stripe")


def gateway_from_env(db: Database, env: Mapping[str, str] | None = None) -> Gateway:
    """The gateway named by `CREDITFLOW_GATEWAY` (sandbox unless set). The Stripe gateway needs
    `CREDITFLOW_STRIPE_API_KEY`; `CREDITFLOW_STRIPE_API_BASE` points it elsewhere (localstripe)."""
    env = os.environ if env is None else env
    name = (env.get("CREDITFLOW_GATEWAY") or "sandbox").strip().lower()
    if name == "sandbox":
        from creditflow.payment.sandbox import SandboxGateway

        return SandboxGateway(db)
    if name == "stripe":
        from creditflow.payment.stripe_gateway import StripeGateway

        api_key = (env.get("CREDITFLOW_STRIPE_API_KEY") or "").strip()
        if not api_key:
            raise ValueError("CREDITFLOW_GATEWAY=stripe needs CREDITFLOW_STRIPE_API_KEY")
        return StripeGateway(api_key, api_base=(env.get("CREDITFLOW_STRIPE_API_BASE") or "").strip() or None,
                             customer_for_key=stripe_customer_of_attempt(db))
    raise ValueError(f"CREDITFLOW_GATEWAY: unknown gateway {name!r} (use {' or '.join(GATEWAYS)})")


def stripe_customer_of_attempt(db: Database) -> Callable[[str], str | None]:
    """For the Stripe gateway's lookup: the gateway customer a payment attempt was charged to.
    Read in a transaction of its own, never inside the caller's (SPEC P3)."""

    def find(attempt_id: str) -> str | None:
        from sqlalchemy import select

        from creditflow.customer.models import Customer
        from creditflow.payment.models import PaymentAttempt

        with db.transaction(readonly=True) as session:
            return session.scalar(
                select(Customer.gateway_customer_id)
                .join(PaymentAttempt, PaymentAttempt.customer_id == Customer.id)
                .where(PaymentAttempt.id == attempt_id)
            )

    return find
