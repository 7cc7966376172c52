"""The shapes of the API's answers, for type checkers and editors. At run time they are the
decoded JSON dicts; fields the server adds later are there too."""

from __future__ import annotations

from typing import Any, Generic, Literal, NotRequired, TypedDict, TypeVar

T = TypeVar("T")

Credits = str  # a decimal string with at most 3 fractional digits: "73.5"
Instant = str  # ISO 8601 UTC with Z: "2026-04-10T10:00:00Z"


class Page(TypedDict, Generic[T]):
    object: Literal["list"]
    data: list[T]
    has_more: bool


class Customer(TypedDict):
    id: str
    object: Literal["customer"]
    external_id: str
    email: str
    name: str | None
    country: str | None
    address: dict[str, str | None] | None  # line1, line2, city, postal_code, state
    tax_id: str | None
    timezone: str
    language: str | None
    test_clock: str | None
    plan: str
    balance: int
    currency: str
    payment_method: str | None
    created_at: Instant


class PaymentMethod(TypedDict):
    object: Literal["payment_method"]
    id: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None


class ScheduledChange(TypedDict):
    plan: str
    term: str
    kind: Literal["upgrade", "downgrade"]
    effective_at: Instant
    amount_due_then: int


class PriceChange(TypedDict):
    price: int
    effective_at: Instant


class ReplacedChange(TypedDict):
    plan: str
    term: str
    kind: Literal["upgrade", "downgrade"]


class Discount(TypedDict):
    coupon: str  # the coupon's code
    ends_after_period: Instant | None  # the end of the last term it discounts; None: forever


class Coupon(TypedDict):
    id: str
    object: Literal["coupon"]
    code: str
    percent_off: str | None  # a decimal string: "20", "12.5"
    amount_off: int | None
    currency: str | None  # of amount_off
    duration: Literal["once", "repeating", "forever"]
    duration_periods: int | None
    plans: list[str]
    terms: list[str]
    bundles: list[str]
    redeem_by: Instant | None
    max_redemptions: int | None
    times_redeemed: int
    created_at: Instant


class Subscription(TypedDict):
    id: str
    object: Literal["subscription"]
    customer: str
    plan: str
    term: str
    status: Literal["active", "past_due", "ended"]
    current_term_start: Instant
    current_term_end: Instant
    credit_period_start: Instant
    credit_period_end: Instant
    cancel_at_period_end: bool
    canceled_at: Instant | None
    ended_at: Instant | None
    scheduled_change: ScheduledChange | None
    price: int | None  # per charge of its term, as sold (kept when the catalog's price changes)
    price_change: PriceChange | None  # a moved price and the renewal it starts at
    replaced_change: ReplacedChange | None
    discount: Discount | None
    created_at: Instant


class QuoteLine(TypedDict):
    kind: str  # new_plan, unused_time, discount, tax, account_balance
    description: str
    amount: int
    rate: NotRequired[str]  # tax lines only: the percent, "19"
    country: NotRequired[str]  # tax lines only: the country or country-region taxed for


class Quote(TypedDict):
    id: str
    object: Literal["quote"]
    subscription: str
    plan: str
    term: str
    kind: Literal["upgrade", "downgrade"]
    timing: Literal["immediate", "end_of_period"]
    amount_due: int
    currency: str
    lines: list[QuoteLine]
    effective_at: Instant
    next_renewal_at: Instant
    next_renewal_amount: int
    credits_after: dict[str, Credits]
    expires_at: Instant


class Lot(TypedDict):
    id: str
    kind: Literal["free", "subscription", "top_up", "promo", "earned"]
    granted: Credits
    remaining: Credits
    expires_at: Instant | None


class Balance(TypedDict):
    object: Literal["credit_balance"]
    customer: str
    available: Credits
    held: Credits
    by_kind: dict[str, Credits]
    lots: list[Lot]


class Draw(TypedDict):
    lot: str
    kind: str
    amount: Credits


class Spend(TypedDict):
    id: str
    object: Literal["credit_spend"]
    customer: str
    reference: str
    amount: Credits
    feature: str
    status: Literal["spent", "refunded"]
    draws: list[Draw]
    balance: Credits
    created_at: Instant
    queue: Literal["fast", "relaxed"] | None  # for a feature the plan limits


class EstimateLine(TypedDict):
    what: str
    amount: Credits  # the last line of a job inside an unlimited window is negative


class Estimate(TypedDict):
    object: Literal["credit_estimate"]
    feature: str
    amount: Credits
    lines: list[EstimateLine]
    unlimited: bool
    options: dict[str, Any]


class Entitlement(TypedDict):
    feature: str
    allowed: bool
    reason: str | None
    unlimited_until: Instant | None
    concurrent_limit: int | None
    running: int
    fast_per_day: int | None
    fast_used_today: int
    resets_at: Instant | None
    relaxed: bool


class Entitlements(TypedDict):
    object: Literal["entitlements"]
    customer: str
    features: list[Entitlement]


Transfer = TypedDict("Transfer", {
    "id": str, "object": Literal["credit_transfer"], "reference": str, "from": str, "to": str, "amount": Credits,
    "feature": str, "lot": str, "created_at": Instant})


class SpendRefund(TypedDict):
    object: Literal["credit_refund"]
    customer: str
    reference: str
    amount: Credits
    returned: list[Draw]
    expired: Credits
    balance: Credits
    refunded_at: Instant


class Hold(TypedDict):
    id: str
    object: Literal["hold"]
    customer: str
    reference: str
    amount: Credits
    feature: str
    status: Literal["held", "settled", "released", "expired"]
    settled_amount: Credits | None
    expires_at: Instant
    created_at: Instant
    queue: Literal["fast", "relaxed"] | None  # for a feature the plan limits


class GrantedLot(TypedDict):
    id: str
    object: Literal["credit_lot"]
    customer: str
    kind: str
    granted: Credits
    remaining: Credits
    expires_at: Instant | None
    reason: str | None
    created_at: Instant


class LedgerEntry(TypedDict):
    id: str
    object: Literal["credit_entry"]
    kind: Literal["grant", "spend", "expire", "refund", "hold", "release", "settle"]
    amount: Credits
    lot: str | None
    reference: str | None
    member: NotRequired[str | None]  # on a team: whose spend or hold it is
    created_at: Instant


class TopUp(TypedDict):
    object: Literal["top_up"]
    customer: str
    bundle: str
    credits: Credits
    invoice: str
    lot: str
    amount_paid: int
    currency: str
    created_at: Instant


class InvoiceLine(TypedDict):
    kind: str
    description: str
    amount: int
    period_start: Instant | None
    period_end: Instant | None
    rate: NotRequired[str]  # tax lines only
    country: NotRequired[str]  # tax lines only


class Seller(TypedDict):
    name: str
    address: str | None
    tax_id: str | None
    country: str | None


class BillTo(TypedDict):
    name: str | None
    address: dict[str, str | None] | None  # line1, line2, city, postal_code, state
    country: str | None
    tax_id: str | None


class PaymentAttempt(TypedDict):
    id: str
    object: Literal["payment_attempt"]
    status: str
    amount: int
    currency: str
    failure_code: str | None
    failure_message: str | None
    gateway_reference: str | None
    created_at: Instant
    completed_at: Instant | None


class Invoice(TypedDict):
    id: str
    object: Literal["invoice"]
    number: int
    customer: str
    subscription: str | None
    purpose: str
    status: Literal["open", "paid", "void", "refunded"]
    currency: str
    lines: list[InvoiceLine]
    subtotal: int
    discount: int
    tax: int
    total: int
    balance_applied: int
    amount_paid: int
    amount_refunded: int
    created_at: Instant
    paid_at: Instant | None
    attempts: list[PaymentAttempt]
    seller: Seller | None
    bill_to: BillTo | None


class RefundEligibility(TypedDict):
    object: Literal["refund_eligibility"]
    invoice: str
    eligible: bool
    reason: str


class Refund(TypedDict):
    id: str
    object: Literal["refund"]
    invoice: str
    customer: str
    amount: int
    currency: str
    status: Literal["pending", "succeeded", "failed"]
    reason: str
    created_at: Instant


class Event(TypedDict):
    id: str
    object: Literal["event"]
    type: str
    customer: str | None
    created_at: Instant
    data: dict[str, Any]


class WebhookEndpoint(TypedDict):
    id: str
    object: Literal["webhook_endpoint"]
    url: str
    events: list[str] | None
    created_at: Instant


class NewWebhookEndpoint(WebhookEndpoint):
    secret: str  # signs the deliveries; shown only when the endpoint is created


class PortalSession(TypedDict):
    id: str
    object: Literal["portal_session"]
    customer: str
    url: str
    member: NotRequired[str | None]
    expires_at: Instant


class Member(TypedDict):
    id: str
    object: Literal["member"]
    customer: str
    email: str
    external_id: str | None
    role: Literal["owner", "admin", "member"]
    status: Literal["invited", "active", "suspended", "removed", "revoked"]
    monthly_limit: Credits | None
    used_this_month: Credits
    invite_url: str | None
    invite_expires_at: Instant | None
    suspended_reason: str | None
    created_at: Instant


class MemberList(TypedDict):
    object: Literal["list"]
    data: list[Member]
    has_more: bool
    seats_used: int
    seat_limit: int


class AutoTopUp(TypedDict):
    object: Literal["auto_top_up"]
    customer: str
    enabled: bool
    threshold: Credits
    bundle: str
    monthly_max: int
    purchases_this_month: int
    in_flight: bool
    last_failure: str | None


class TestClock(TypedDict):
    id: str
    object: Literal["test_clock"]
    frozen_time: Instant


Catalog = dict[str, Any]
