"""What every use case needs: the database, the catalog, the gateway and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field

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
