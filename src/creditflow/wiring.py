"""Putting a Context together from the environment: the database, the catalog and the gateway."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from sqlalchemy import select

from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.customer.models import Customer
from creditflow.kit.clock import Clock, SystemClock
from creditflow.kit.db import Database
from creditflow.payment.gateway import Gateway
from creditflow.payment.models import PaymentAttempt
from creditflow.payment.sandbox import SandboxGateway
from creditflow.payment.stripe_gateway import StripeGateway
from creditflow.subscription.cohorts import check_catalog_serves, fill_unset_prices

GATEWAYS = ("sandbox", "stripe")


def build_context(db: Database | None = None, catalog_path: str | None = None, gateway: Gateway | None = None,
                  clock: Clock | None = None) -> Context:
    db = db or Database()
    return Context(db=db, catalog=load_catalog(catalog_path), gateway=gateway or gateway_from_env(db),
                   clock=clock or SystemClock())


def check_catalog_in_use(ctx: Context) -> int:
    """Before serving or working: refuse a catalog that drops a plan (or a plan's term) live
    subscriptions are still on (`CatalogStrandsSubscribers`, naming each and how many), then
    give the subscriptions from before prices were kept the price of the catalog they start
    with. Returns how many prices it filled in."""
    with ctx.db.transaction() as session:
        check_catalog_serves(session, ctx.catalog)
        return fill_unset_prices(session, ctx.catalog)


def gateway_from_env(db: Database, env: Mapping[str, str] | None = None) -> Gateway:
    """The gateway named by `CREDITFLOW_GATEWAY` (sandbox unless set). The Stripe gateway needs
    `CREDITFLOW_STRIPE_API_KEY`; `CREDITFLOW_STRIPE_API_BASE` points it elsewhere (localstripe);
    `CREDITFLOW_STRIPE_PUBLISHABLE_KEY` is what the billing page's Stripe.js uses."""
    env = os.environ if env is None else env
    name = (env.get("CREDITFLOW_GATEWAY") or "sandbox").strip().lower()
    if name == "sandbox":
        return SandboxGateway(db)
    if name == "stripe":
        api_key = (env.get("CREDITFLOW_STRIPE_API_KEY") or "").strip()
        if not api_key:
            raise ValueError("CREDITFLOW_GATEWAY=stripe needs CREDITFLOW_STRIPE_API_KEY")
        return StripeGateway(api_key, api_base=(env.get("CREDITFLOW_STRIPE_API_BASE") or "").strip() or None,
                             customer_for_key=stripe_customer_of_attempt(db),
                             publishable_key=(env.get("CREDITFLOW_STRIPE_PUBLISHABLE_KEY") or "").strip() or None)
    raise ValueError(f"CREDITFLOW_GATEWAY: unknown gateway {name!r} (use {' or '.join(GATEWAYS)})")


def stripe_customer_of_attempt(db: Database) -> Callable[[str], str | None]:
    """For the Stripe gateway's lookup: the gateway customer a payment attempt was charged to.
    Read in a transaction of its own, never inside the caller's (the gateway is never called
    inside a transaction)."""

    def find(attempt_id: str) -> str | None:
        with db.transaction(readonly=True) as session:
            return session.scalar(
                select(Customer.gateway_customer_id)
                .join(PaymentAttempt, PaymentAttempt.customer_id == Customer.id)
                .where(PaymentAttempt.id == attempt_id)
            )

    return find
