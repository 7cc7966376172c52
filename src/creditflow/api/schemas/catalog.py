"""The catalog as the API shows it: plans, bundles, the Free plan and features."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from creditflow.api.schemas.common import CreditsOut, Read
from creditflow.api.schemas.pricing import CostRead, LimitsRead


class PlanRead(Read):
    code: str
    name: str
    rank: int
    monthly_credits: CreditsOut
    features: list[str]
    prices: dict[str, int]
    seats: int = 1
    on_sale: bool = Field(default=True, description="False: kept for its subscribers (it renews and serves them), "
                                                    "but no longer sold")
    unlimited: dict[str, int] = Field(default_factory=dict, description="feature: days free from the start of each "
                                                                         "billing period")
    limits: dict[str, LimitsRead] = Field(default_factory=dict, description="feature: its limits on this plan")


class BundleRead(Read):
    code: str
    name: str
    credits: CreditsOut
    price: int
    on_sale: bool = Field(default=True, description="False: no longer sold")


class FreeRead(Read):
    daily_credits: CreditsOut
    features: list[str]


class FeatureRead(Read):
    code: str
    name: str
    requires_subscription: bool
    cost: CostRead | None = Field(default=None, description="Its price by options; null: spends name an amount")


class CatalogRead(Read):
    object: Literal["catalog"] = "catalog"
    currency: str
    plans: list[PlanRead]
    bundles: list[BundleRead]
    free: FreeRead
    features: list[FeatureRead]

    @classmethod
    def of(cls, catalog) -> "CatalogRead":
        return cls(
            currency=catalog.currency,
            plans=[PlanRead(code=p.code, name=p.name, rank=p.rank, monthly_credits=p.monthly_credits,
                            features=sorted(p.features), prices={t.value: p.prices[t] for t in p.terms}, seats=p.seats,
                            on_sale=p.on_sale, unlimited=dict(p.unlimited), limits=p.limits)
                   for p in catalog.plans_by_rank()],
            bundles=list(catalog.bundles.values()),
            free=FreeRead(daily_credits=catalog.free.daily_credits, features=sorted(catalog.free.features)),
            features=[FeatureRead(code=f.code, name=f.label, requires_subscription=f.requires_subscription,
                                  cost=CostRead.of(f.cost))
                      for f in catalog.features.values()],
        )
