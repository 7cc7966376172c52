"""Events, webhook endpoints, portal sessions, test clocks and the catalog."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from creditflow.api.schemas.common import CreditsOut, Id, InstantIn, InstantOut, Read, Request


class EventRead(Read):
    id: str
    object: Literal["event"] = "event"
    type: str
    customer: str | None
    created_at: InstantOut
    data: dict[str, Any]


class WebhookEndpointCreate(Request):
    url: str = Field(min_length=1, max_length=2048)
    events: list[Id] | None = Field(default=None, max_length=100,
                                    description="Event types to receive; all when left out")


class WebhookEndpointRead(Read):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    events: list[str] | None
    created_at: InstantOut


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: str = Field(description="Signs deliveries (HMAC-SHA256); shown only here")

    @classmethod
    def of(cls, endpoint) -> "WebhookEndpointCreated":
        return cls(id=endpoint.id, url=endpoint.url, events=endpoint.events, created_at=endpoint.created_at,
                   secret=endpoint.secret)


class PortalSessionCreate(Request):
    customer: Id
    return_url: str | None = Field(default=None, max_length=2048)


class PortalSessionRead(Read):
    id: str
    object: Literal["portal_session"] = "portal_session"
    customer: str
    url: str
    expires_at: InstantOut


class TestClockCreate(Request):
    frozen_time: InstantIn


class TestClockAdvance(Request):
    frozen_time: InstantIn


class TestClockRead(Read):
    __test__ = False

    id: str
    object: Literal["test_clock"] = "test_clock"
    frozen_time: InstantOut


class PlanRead(Read):
    code: str
    name: str
    rank: int
    monthly_credits: CreditsOut
    features: list[str]
    prices: dict[str, int]


class BundleRead(Read):
    code: str
    name: str
    credits: CreditsOut
    price: int


class FreeRead(Read):
    daily_credits: CreditsOut
    features: list[str]


class FeatureRead(Read):
    code: str
    name: str
    requires_subscription: bool


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
                            features=sorted(p.features), prices={t.value: p.prices[t] for t in p.terms})
                   for p in catalog.plans_by_rank()],
            bundles=[BundleRead(code=b.code, name=b.name, credits=b.credits, price=b.price)
                     for b in catalog.bundles.values()],
            free=FreeRead(daily_credits=catalog.free.daily_credits, features=sorted(catalog.free.features)),
            features=[FeatureRead(code=f.code, name=f.label, requires_subscription=f.requires_subscription)
                      for f in catalog.features.values()],
        )


class Health(Read):
    status: Literal["ok"] = "ok"
