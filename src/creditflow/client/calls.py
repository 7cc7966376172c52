"""Every endpoint of the API, once: a function of its arguments that says what to send. The
sync and async clients both run these, so the two can't drift apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from creditflow.client import types as t

T = TypeVar("T")
Number = int | float | str  # credits: a decimal string or a JSON number


@dataclass(frozen=True)
class Call(Generic[T]):
    method: Literal["GET", "POST", "DELETE"]
    path: str
    body: dict[str, Any] | None = None
    query: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None  # writes get one made up when None

    @property
    def writes(self) -> bool:
        return self.method != "GET"


def _p(value: str) -> str:
    """An id in a path, escaped: an id is never trusted to be path-safe."""
    return quote(value, safe="")


def _body(**fields: Any) -> dict[str, Any]:
    """The request body without the fields left out (None)."""
    return {name: value for name, value in fields.items() if value is not None}


def _page(limit: int | None, starting_after: str | None, **more: Any) -> dict[str, Any]:
    return _body(limit=limit, starting_after=starting_after, **more)


# -- customers --------------------------------------------------------------------------------

def create_customer(*, external_id: str, email: str, name: str | None = None, country: str | None = None,
                    timezone: str | None = None, test_clock: str | None = None, language: str | None = None,
                    idempotency_key: str | None = None) -> Call[t.Customer]:
    return Call("POST", "/v1/customers", _body(external_id=external_id, email=email, name=name, country=country,
                                              timezone=timezone, test_clock=test_clock, language=language),
                {}, idempotency_key)


def get_customer(customer: str) -> Call[t.Customer]:
    return Call("GET", f"/v1/customers/{_p(customer)}")


def update_customer(customer: str, *, name: str | None = None, email: str | None = None, country: str | None = None,
                    address: dict[str, str | None] | None = None, tax_id: str | None = None,
                    language: str | None = None, idempotency_key: str | None = None) -> Call[t.Customer]:
    """Change billing details (later invoices only) or the language of the customer's emails;
    fields left out stay as they are."""
    return Call("POST", f"/v1/customers/{_p(customer)}", _body(name=name, email=email, country=country,
                                                               address=address, tax_id=tax_id, language=language),
                {}, idempotency_key)


def list_customers(*, external_id: str | None = None, limit: int | None = None,
                   starting_after: str | None = None) -> Call[t.Page[t.Customer]]:
    return Call("GET", "/v1/customers", query=_page(limit, starting_after, external_id=external_id))


def set_payment_method(customer: str, *, token: str, idempotency_key: str | None = None) -> Call[t.PaymentMethod]:
    return Call("POST", f"/v1/customers/{_p(customer)}/payment_method", {"token": token}, {}, idempotency_key)


def get_payment_method(customer: str) -> Call[t.PaymentMethod]:
    return Call("GET", f"/v1/customers/{_p(customer)}/payment_method")


# -- subscriptions ----------------------------------------------------------------------------

def create_subscription(*, customer: str, plan: str, term: str, coupon: str | None = None,
                        idempotency_key: str | None = None) -> Call[t.Subscription]:
    return Call("POST", "/v1/subscriptions", _body(customer=customer, plan=plan, term=term, coupon=coupon), {},
                idempotency_key)


def get_subscription(subscription: str) -> Call[t.Subscription]:
    return Call("GET", f"/v1/subscriptions/{_p(subscription)}")


def customer_subscription(customer: str) -> Call[t.Subscription]:
    return Call("GET", f"/v1/customers/{_p(customer)}/subscription")


def preview_change(subscription: str, *, plan: str, term: str, timing: str = "immediate",
                   coupon: str | None = None, idempotency_key: str | None = None) -> Call[t.Quote]:
    return Call("POST", f"/v1/subscriptions/{_p(subscription)}/preview_change",
                _body(plan=plan, term=term, timing=timing, coupon=coupon), {}, idempotency_key)


def change_subscription(subscription: str, *, plan: str, term: str, timing: str = "immediate",
                        quote: str | None = None, unused_value: str | None = None, reason: str | None = None,
                        coupon: str | None = None, idempotency_key: str | None = None) -> Call[t.Subscription]:
    return Call("POST", f"/v1/subscriptions/{_p(subscription)}/change",
                _body(plan=plan, term=term, timing=timing, quote=quote, unused_value=unused_value, reason=reason,
                      coupon=coupon), {}, idempotency_key)


def cancel_scheduled_change(subscription: str, *, idempotency_key: str | None = None) -> Call[t.Subscription]:
    return Call("DELETE", f"/v1/subscriptions/{_p(subscription)}/scheduled_change", None, {}, idempotency_key)


def cancel_subscription(subscription: str, *, at_period_end: bool | None = None, refund: str | None = None,
                        reason: str | None = None, idempotency_key: str | None = None) -> Call[t.Subscription]:
    return Call("POST", f"/v1/subscriptions/{_p(subscription)}/cancel",
                _body(at_period_end=at_period_end, refund=refund, reason=reason), {}, idempotency_key)


def resume_subscription(subscription: str, *, idempotency_key: str | None = None) -> Call[t.Subscription]:
    return Call("POST", f"/v1/subscriptions/{_p(subscription)}/resume", {}, {}, idempotency_key)


def apply_discount(subscription: str, *, coupon: str, idempotency_key: str | None = None) -> Call[t.Subscription]:
    return Call("POST", f"/v1/subscriptions/{_p(subscription)}/discount", {"coupon": coupon}, {}, idempotency_key)


# -- coupons ----------------------------------------------------------------------------------

def create_coupon(*, code: str, duration: str, percent_off: int | str | None = None, amount_off: int | None = None,
                  duration_periods: int | None = None, plans: list[str] | None = None, terms: list[str] | None = None,
                  bundles: list[str] | None = None, redeem_by: str | None = None, max_redemptions: int | None = None,
                  idempotency_key: str | None = None) -> Call[t.Coupon]:
    """Support key only."""
    return Call("POST", "/v1/coupons", _body(
        code=code, duration=duration, percent_off=percent_off, amount_off=amount_off,
        duration_periods=duration_periods, plans=plans, terms=terms, bundles=bundles, redeem_by=redeem_by,
        max_redemptions=max_redemptions), {}, idempotency_key)


def get_coupon(code: str) -> Call[t.Coupon]:
    return Call("GET", f"/v1/coupons/{_p(code)}")


# -- credits ----------------------------------------------------------------------------------

def get_balance(customer: str) -> Call[t.Balance]:
    return Call("GET", f"/v1/customers/{_p(customer)}/credits")


def spend(customer: str, *, feature: str, reference: str, amount: Number | None = None,
          options: dict[str, Any] | None = None, member: str | None = None,
          idempotency_key: str | None = None) -> Call[t.Spend]:
    """`amount`, or `options` for a feature the catalog prices (charged exactly their estimate).
    On a team, `member` names who spends (required there, refused elsewhere)."""
    return Call("POST", f"/v1/customers/{_p(customer)}/credits/spend",
                {**_body(amount=amount, options=options), "feature": feature, "reference": reference,
                 **_body(member=member)}, {}, idempotency_key)


def refund_spend(customer: str, *, reference: str, idempotency_key: str | None = None) -> Call[t.SpendRefund]:
    return Call("POST", f"/v1/customers/{_p(customer)}/credits/refund", {"reference": reference}, {},
                idempotency_key)


def hold(customer: str, *, feature: str, reference: str, amount: Number | None = None,
         options: dict[str, Any] | None = None, ttl_seconds: int | None = None, member: str | None = None,
         idempotency_key: str | None = None) -> Call[t.Hold]:
    """`amount`, or `options` for a feature the catalog prices. A hold is a running job for the
    plan's limits."""
    return Call("POST", f"/v1/customers/{_p(customer)}/credits/holds",
                _body(amount=amount, options=options, feature=feature, reference=reference, ttl_seconds=ttl_seconds,
                      member=member),
                {}, idempotency_key)


def estimate(customer: str, *, feature: str, options: dict[str, Any] | None = None, member: str | None = None,
             idempotency_key: str | None = None) -> Call[t.Estimate]:
    """What one job costs the customer now ("0" inside an unlimited window), line by line. On a
    team, `member` names who would run it."""
    return Call("POST", f"/v1/customers/{_p(customer)}/credits/estimate",
                {"feature": feature, "options": options or {}, **_body(member=member)}, {}, idempotency_key)


def entitlements(customer: str) -> Call[t.Entitlements]:
    return Call("GET", f"/v1/customers/{_p(customer)}/entitlements")


def transfer(*, from_customer: str, to_customer: str, amount: Number, feature: str, reference: str,
             idempotency_key: str | None = None) -> Call[t.Transfer]:
    """Move credits from one customer to another, once per reference (a replay returns it)."""
    return Call("POST", "/v1/credits/transfers", {"from": from_customer, "to": to_customer, "amount": amount,
                                                  "feature": feature, "reference": reference}, {}, idempotency_key)


def get_hold(hold_id: str) -> Call[t.Hold]:
    return Call("GET", f"/v1/holds/{_p(hold_id)}")


def settle_hold(hold_id: str, *, amount: Number, idempotency_key: str | None = None) -> Call[t.Hold]:
    return Call("POST", f"/v1/holds/{_p(hold_id)}/settle", {"amount": amount}, {}, idempotency_key)


def release_hold(hold_id: str, *, idempotency_key: str | None = None) -> Call[t.Hold]:
    return Call("POST", f"/v1/holds/{_p(hold_id)}/release", {}, {}, idempotency_key)


def grant(customer: str, *, amount: Number, reason: str, expires_at: str | None = None,
          reference: str | None = None, idempotency_key: str | None = None) -> Call[t.GrantedLot]:
    return Call("POST", f"/v1/customers/{_p(customer)}/credits/grants",
                _body(amount=amount, reason=reason, expires_at=expires_at, reference=reference), {}, idempotency_key)


def ledger(customer: str, *, limit: int | None = None,
           starting_after: str | None = None) -> Call[t.Page[t.LedgerEntry]]:
    return Call("GET", f"/v1/customers/{_p(customer)}/credits/ledger", query=_page(limit, starting_after))


def top_up(customer: str, *, bundle: str, coupon: str | None = None,
           idempotency_key: str | None = None) -> Call[t.TopUp]:
    return Call("POST", f"/v1/customers/{_p(customer)}/top_ups", _body(bundle=bundle, coupon=coupon), {},
                idempotency_key)


# -- teams ------------------------------------------------------------------------------------

class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # a field left as it is (None means "no limit" for a monthly limit)


def invite_member(customer: str, *, email: str, external_id: str | None = None, role: str | None = None,
                  idempotency_key: str | None = None) -> Call[t.Member]:
    return Call("POST", f"/v1/customers/{_p(customer)}/members", _body(email=email, external_id=external_id,
                                                                         role=role), {}, idempotency_key)


def list_members(customer: str) -> Call[t.MemberList]:
    return Call("GET", f"/v1/customers/{_p(customer)}/members")


def get_member(member: str) -> Call[t.Member]:
    return Call("GET", f"/v1/members/{_p(member)}")


def accept_member(member: str, *, external_id: str, idempotency_key: str | None = None) -> Call[t.Member]:
    return Call("POST", f"/v1/members/{_p(member)}/accept", {"external_id": external_id}, {}, idempotency_key)


def update_member(member: str, *, role: str | None = None, monthly_limit: Number | None = UNSET,
                  status: str | None = None, idempotency_key: str | None = None) -> Call[t.Member]:
    """Fields left out stay as they are; `monthly_limit=None` removes the limit."""
    body = _body(role=role, status=status)
    if monthly_limit is not UNSET:
        body["monthly_limit"] = monthly_limit
    return Call("POST", f"/v1/members/{_p(member)}", body, {}, idempotency_key)


def remove_member(member: str, *, idempotency_key: str | None = None) -> Call[t.Member]:
    return Call("DELETE", f"/v1/members/{_p(member)}", None, {}, idempotency_key)


def set_auto_top_up(customer: str, *, enabled: bool, threshold: Number, bundle: str, monthly_max: int,
                    idempotency_key: str | None = None) -> Call[t.AutoTopUp]:
    return Call("POST", f"/v1/customers/{_p(customer)}/auto_top_up",
                {"enabled": enabled, "threshold": threshold, "bundle": bundle, "monthly_max": monthly_max}, {},
                idempotency_key)


def get_auto_top_up(customer: str) -> Call[t.AutoTopUp]:
    return Call("GET", f"/v1/customers/{_p(customer)}/auto_top_up")


# -- invoices and refunds ---------------------------------------------------------------------

def list_invoices(*, customer: str | None = None, limit: int | None = None,
                  starting_after: str | None = None) -> Call[t.Page[t.Invoice]]:
    return Call("GET", "/v1/invoices", query=_page(limit, starting_after, customer=customer))


def get_invoice(invoice: str) -> Call[t.Invoice]:
    return Call("GET", f"/v1/invoices/{_p(invoice)}")


def refund_eligibility(invoice: str) -> Call[t.RefundEligibility]:
    return Call("GET", f"/v1/invoices/{_p(invoice)}/refund_eligibility")


def create_refund(*, invoice: str, reason: str, amount: int | None = None,
                  idempotency_key: str | None = None) -> Call[t.Refund]:
    return Call("POST", "/v1/refunds", _body(invoice=invoice, reason=reason, amount=amount), {}, idempotency_key)


# -- events, webhooks, the billing page, test clocks, the catalog -----------------------------

def list_events(*, customer: str | None = None, type: str | None = None, limit: int | None = None,
                starting_after: str | None = None) -> Call[t.Page[t.Event]]:
    return Call("GET", "/v1/events", query=_page(limit, starting_after, customer=customer, type=type))


def create_webhook_endpoint(*, url: str, events: list[str] | None = None,
                            idempotency_key: str | None = None) -> Call[t.NewWebhookEndpoint]:
    return Call("POST", "/v1/webhook_endpoints", _body(url=url, events=events), {}, idempotency_key)


def list_webhook_endpoints() -> Call[t.Page[t.WebhookEndpoint]]:
    return Call("GET", "/v1/webhook_endpoints")


def delete_webhook_endpoint(endpoint: str, *, idempotency_key: str | None = None) -> Call[None]:
    return Call("DELETE", f"/v1/webhook_endpoints/{_p(endpoint)}", None, {}, idempotency_key)


def create_portal_session(*, customer: str, return_url: str | None = None, member: str | None = None,
                          idempotency_key: str | None = None) -> Call[t.PortalSession]:
    """`member`: the link opens that team member's page (the pool, their usage; no billing)."""
    return Call("POST", "/v1/portal_sessions", _body(customer=customer, return_url=return_url, member=member), {},
                idempotency_key)


def create_test_clock(*, frozen_time: str, idempotency_key: str | None = None) -> Call[t.TestClock]:
    return Call("POST", "/v1/test_clocks", {"frozen_time": frozen_time}, {}, idempotency_key)


def get_test_clock(clock: str) -> Call[t.TestClock]:
    return Call("GET", f"/v1/test_clocks/{_p(clock)}")


def advance_test_clock(clock: str, *, frozen_time: str, idempotency_key: str | None = None) -> Call[t.TestClock]:
    return Call("POST", f"/v1/test_clocks/{_p(clock)}/advance", {"frozen_time": frozen_time}, {}, idempotency_key)


def get_catalog() -> Call[t.Catalog]:
    return Call("GET", "/v1/catalog")
