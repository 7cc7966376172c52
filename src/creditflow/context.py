"""What every use case needs: the database, the catalog, the gateway and the clock."""

from __future__ import annotations

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
    from creditflow.payment.sandbox import SandboxGateway

    db = db or Database()
    return Context(db=db, catalog=load_catalog(catalog_path), gateway=gateway or SandboxGateway(db),
                   clock=clock or SystemClock())
