"""Coupons through the HTTP API: creating and reading them, every bad input and error code, and
their discount on subscribing, changing plan, topping up and on an existing subscription."""

from __future__ import annotations

import pytest

from api_kit import SUPPORT_KEY, assert_error


def coupon(api, code: str, **fields) -> dict:
    body = {"code": code, "duration": "once", **fields}
    if "amount_off" not in fields and "percent_off" not in fields:
        body["percent_off"] = 20
    return api.ok("POST", "/v1/coupons", body, status=201, key=SUPPORT_KEY)


def invoice_of(api, customer_id: str, index: int = -1) -> dict:
    return api.ok("GET", "/v1/invoices", params={"customer": customer_id})["data"][index]


def line_kinds(invoice: dict) -> list[str]:
    return [line["kind"] for line in invoice["lines"]]


def events(api, customer_id: str, type: str) -> list[dict]:
    return api.ok("GET", "/v1/events", params={"customer": customer_id, "type": type})["data"]


# --- creating and reading -----------------------------------------------------------------


def test_support_creates_a_coupon_and_anyone_reads_it_by_code(api):
    created = coupon(api, "SPRING20", percent_off="12.5", duration="repeating", duration_periods=3,
                     plans=["standard"], terms=["monthly"], redeem_by="2099-01-01T00:00:00Z", max_redemptions=10)

    assert created["id"].startswith("cpn_") and created["object"] == "coupon"
    assert {k: created[k] for k in ("code", "percent_off", "amount_off", "currency", "duration", "duration_periods",
                                    "plans", "terms", "bundles", "redeem_by", "max_redemptions",
                                    "times_redeemed")} == {
        "code": "SPRING20", "percent_off": "12.5", "amount_off": None, "currency": None, "duration": "repeating",
        "duration_periods": 3, "plans": ["standard"], "terms": ["monthly"], "bundles": [],
        "redeem_by": "2099-01-01T00:00:00Z", "max_redemptions": 10, "times_redeemed": 0}
    assert api.ok("GET", "/v1/coupons/SPRING20") == created
    assert api.ok("GET", "/v1/coupons/spring20")["id"] == created["id"]  # codes match in any case


def test_an_amount_off_coupon_is_in_the_catalog_currency(api):
    created = coupon(api, "TENOFF", amount_off=1000, duration="forever")
    assert (created["amount_off"], created["currency"], created["percent_off"]) == (1000, "usd", None)


def test_creating_a_coupon_needs_a_support_key(api):
    response = api.post("/v1/coupons", {"code": "NOPE", "percent_off": 10, "duration": "once"})
    assert_error(response, 403, "forbidden")
    assert_error(api.get("/v1/coupons/NOPE"), 404, "coupon_not_found", "coupon")


def test_a_code_is_taken_once_whatever_its_case(api):
    coupon(api, "ONCE")
    response = api.post("/v1/coupons", {"code": "once", "percent_off": 5, "duration": "once"}, key=SUPPORT_KEY)
    assert_error(response, 409, "coupon_exists", "code")


@pytest.mark.parametrize("fields, param", [
    ({"percent_off": -5}, "percent_off"),
    ({"percent_off": 0}, "percent_off"),
    ({"percent_off": 101}, "percent_off"),
    ({"percent_off": "100.5"}, "percent_off"),
    ({"percent_off": "12.345"}, "percent_off"),
    ({"percent_off": "abc"}, "percent_off"),
    ({"percent_off": 10, "amount_off": 100}, "percent_off"),
    ({}, "percent_off"),
    ({"amount_off": 0}, "amount_off"),
    ({"amount_off": -100}, "amount_off"),
    ({"amount_off": 10.5}, "amount_off"),
    ({"percent_off": 10, "duration": "repeating"}, "duration_periods"),
    ({"percent_off": 10, "duration": "repeating", "duration_periods": 0}, "duration_periods"),
    ({"percent_off": 10, "duration": "once", "duration_periods": 2}, "duration_periods"),
    ({"percent_off": 10, "duration": "sometimes"}, "duration"),
    ({"percent_off": 10, "plans": ["platinum"]}, "plans"),
    ({"percent_off": 10, "terms": ["weekly"]}, "terms"),
    ({"percent_off": 10, "bundles": ["credits_7"]}, "bundles"),
    ({"percent_off": 10, "redeem_by": "2001-01-01T00:00:00Z"}, "redeem_by"),
    ({"percent_off": 10, "max_redemptions": 0}, "max_redemptions"),
    ({"percent_off": 10, "code": "has space"}, "code"),
])
def test_bad_input_is_refused_naming_the_field_and_creates_nothing(api, fields, param):
    body = {"code": "BAD1", "duration": "once", **fields}
    response = api.post("/v1/coupons", body, key=SUPPORT_KEY)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == param
    assert_error(api.get("/v1/coupons/BAD1"), 404, "coupon_not_found")


# --- subscribing ----------------------------------------------------------------------------


def test_subscribing_with_a_coupon_discounts_the_first_invoice_and_counts_the_redemption(api):
    coupon(api, "WELCOME", percent_off=20, duration="repeating", duration_periods=3)
    customer = api.customer(test_clock=api.clock("2026-03-10T10:00:00Z")["id"])

    sub = api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "monthly",
                                                "coupon": "WELCOME"})

    invoice = invoice_of(api, customer["id"])
    assert (invoice["subtotal"], invoice["discount"], invoice["total"], invoice["amount_paid"]) == (3000, 600, 2400, 2400)
    assert [line for line in invoice["lines"] if line["kind"] == "discount"][0]["amount"] == -600
    # Period 1 was this charge; two more: the discount ends after the third term.
    assert sub["discount"] == {"coupon": "WELCOME", "ends_after_period": "2026-06-10T10:00:00Z"}
    assert api.ok("GET", "/v1/coupons/WELCOME")["times_redeemed"] == 1
    [event] = events(api, customer["id"], "coupon.redeemed")
    assert event["data"]["coupon"] == "WELCOME" and event["data"]["invoice"] == invoice["id"]


def test_a_subscription_without_a_coupon_has_no_discount(api):
    _, sub = api.subscribed()
    assert sub["discount"] is None
    assert api.ok("GET", f"/v1/subscriptions/{sub['id']}")["discount"] is None


def test_a_declined_purchase_gives_its_redemption_back(api):
    coupon(api, "LAST", max_redemptions=1)
    declined = api.customer(payment_method="pm_card_declined")
    response = api.post("/v1/subscriptions", {"customer": declined["id"], "plan": "basic", "term": "monthly",
                                              "coupon": "LAST"})
    assert_error(response, 402, "payment_failed")
    assert api.ok("GET", "/v1/coupons/LAST")["times_redeemed"] == 0

    other = api.customer()
    sub = api.ok("POST", "/v1/subscriptions", {"customer": other["id"], "plan": "basic", "term": "monthly",
                                                "coupon": "LAST"})
    assert sub["discount"]["coupon"] == "LAST"
    assert api.ok("GET", "/v1/coupons/LAST")["times_redeemed"] == 1


@pytest.mark.parametrize("setup, code, status, error", [
    ({}, "MISSING", 404, "coupon_not_found"),
    ({"code": "YEARLYONLY", "terms": ["yearly"]}, "YEARLYONLY", 409, "coupon_not_applicable"),
    ({"code": "BASICONLY", "plans": ["basic"]}, "BASICONLY", 409, "coupon_not_applicable"),
    ({"code": "BUNDLES", "bundles": ["credits_1000"]}, "BUNDLES", 409, "coupon_not_applicable"),
])
def test_subscribing_with_a_coupon_that_does_not_apply_changes_nothing(api, setup, code, status, error):
    if setup:
        coupon(api, **setup)
    customer = api.customer()
    response = api.post("/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "monthly",
                                              "coupon": code})
    assert_error(response, status, error, "coupon")
    assert_error(api.get(f"/v1/customers/{customer['id']}/subscription"), 404, "not_found")
    assert api.ok("GET", "/v1/invoices", params={"customer": customer["id"]})["data"] == []


def test_an_expired_coupon_is_refused(api):
    clock = api.clock("2099-03-10T10:00:00Z")
    coupon(api, "SOON", redeem_by="2099-03-20T00:00:00Z")
    customer = api.customer(test_clock=clock["id"])
    api.ok("POST", "/v1/subscriptions", {"customer": api.customer(test_clock=clock["id"])["id"], "plan": "basic",
                                         "term": "monthly", "coupon": "SOON"})  # redeemable until then
    api.advance(clock["id"], "2099-03-20T00:00:00Z")
    response = api.post("/v1/subscriptions", {"customer": customer["id"], "plan": "basic", "term": "monthly",
                                              "coupon": "SOON"})
    assert_error(response, 409, "coupon_expired", "coupon")
    assert api.ok("GET", "/v1/coupons/SOON")["times_redeemed"] == 1


def test_a_used_up_coupon_is_refused(api):
    coupon(api, "ONLYONE", max_redemptions=1)
    api.ok("POST", "/v1/subscriptions", {"customer": api.customer()["id"], "plan": "basic", "term": "monthly",
                                         "coupon": "ONLYONE"})
    second = api.customer()
    response = api.post("/v1/subscriptions", {"customer": second["id"], "plan": "basic", "term": "monthly",
                                              "coupon": "ONLYONE"})
    assert_error(response, 409, "coupon_exhausted", "coupon")
    assert api.ok("GET", "/v1/coupons/ONLYONE")["times_redeemed"] == 1


def test_a_fixed_amount_never_takes_more_than_the_price(api):
    coupon(api, "HUGE", amount_off=100_000, duration="forever")
    customer = api.customer()
    api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "basic", "term": "monthly",
                                         "coupon": "HUGE"})
    invoice = invoice_of(api, customer["id"])
    assert (invoice["subtotal"], invoice["discount"], invoice["total"], invoice["status"]) == (900, 900, 0, "paid")


def test_the_discount_is_taken_before_tax(api):
    coupon(api, "QUARTER", percent_off=25)
    customer = api.customer(country="DE")
    api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "monthly",
                                         "coupon": "QUARTER"})
    invoice = invoice_of(api, customer["id"])
    assert (invoice["subtotal"], invoice["discount"]) == (3000, 750)
    assert invoice["tax"] == 428  # 19% of 2250, half up
    assert invoice["total"] == invoice["subtotal"] - invoice["discount"] + invoice["tax"]
    assert line_kinds(invoice) == ["subscription", "discount", "tax"]


# --- top-ups --------------------------------------------------------------------------------


def test_a_top_up_with_a_bundle_coupon(api):
    coupon(api, "BUNDLE10", percent_off=10, bundles=["credits_5000"])
    customer, _ = api.subscribed()

    api.ok("POST", f"/v1/customers/{customer['id']}/top_ups", {"bundle": "credits_5000", "coupon": "BUNDLE10"})

    invoice = invoice_of(api, customer["id"])
    assert (invoice["subtotal"], invoice["discount"], invoice["total"]) == (4500, 450, 4050)
    response = api.post(f"/v1/customers/{customer['id']}/top_ups", {"bundle": "credits_1000", "coupon": "BUNDLE10"})
    assert_error(response, 409, "coupon_not_applicable", "coupon")
    assert api.ok("GET", "/v1/coupons/BUNDLE10")["times_redeemed"] == 1


def test_a_plan_coupon_does_not_apply_to_bundles(api):
    coupon(api, "PLANS", plans=["standard"])
    customer, _ = api.subscribed()
    response = api.post(f"/v1/customers/{customer['id']}/top_ups", {"bundle": "credits_1000", "coupon": "PLANS"})
    assert_error(response, 409, "coupon_not_applicable", "coupon")


# --- plan changes ---------------------------------------------------------------------------


def test_a_change_preview_shows_the_discount_line_and_the_confirmation_charges_it(api):
    coupon(api, "UPGRADE50", percent_off=50, plans=["ultimate"])
    customer, sub = api.subscribed("standard", "monthly")
    body = {"plan": "ultimate", "term": "monthly", "timing": "immediate", "coupon": "UPGRADE50"}

    quote = api.ok("POST", f"/v1/subscriptions/{sub['id']}/preview_change", body)

    discount_lines = [line for line in quote["lines"] if line["kind"] == "discount"]
    charged = sum(line["amount"] for line in quote["lines"] if line["kind"] in ("new_plan", "unused_time"))
    assert discount_lines and discount_lines[0]["amount"] == -((charged + 1) // 2)
    assert quote["amount_due"] == charged + discount_lines[0]["amount"]
    assert api.ok("GET", "/v1/coupons/UPGRADE50")["times_redeemed"] == 0  # a preview redeems nothing

    changed = api.ok("POST", f"/v1/subscriptions/{sub['id']}/change", {**body, "quote": quote["id"]})

    invoice = invoice_of(api, customer["id"])
    assert invoice["amount_paid"] == quote["amount_due"] and invoice["discount"] == -discount_lines[0]["amount"]
    assert changed["plan"] == "ultimate" and changed["discount"]["coupon"] == "UPGRADE50"
    assert api.ok("GET", "/v1/coupons/UPGRADE50")["times_redeemed"] == 1


def test_a_change_to_a_plan_the_coupon_is_not_for_is_refused(api):
    coupon(api, "CREATORONLY", plans=["creator"])
    _, sub = api.subscribed("standard", "monthly")
    response = api.post(f"/v1/subscriptions/{sub['id']}/preview_change",
                        {"plan": "ultimate", "term": "monthly", "coupon": "CREATORONLY"})
    assert_error(response, 409, "coupon_not_applicable", "coupon")
    response = api.post(f"/v1/subscriptions/{sub['id']}/change",
                        {"plan": "ultimate", "term": "monthly", "coupon": "CREATORONLY"})
    assert_error(response, 409, "coupon_not_applicable", "coupon")
    assert api.ok("GET", f"/v1/subscriptions/{sub['id']}")["plan"] == "standard"


def test_an_end_of_period_change_with_a_coupon_discounts_the_renewal_it_starts(api):
    coupon(api, "NEXTYEAR", percent_off=10, terms=["yearly"], duration="once")
    _, sub = api.subscribed("standard", "monthly", test_clock=api.clock("2026-03-10T10:00:00Z")["id"])
    body = {"plan": "standard", "term": "yearly", "timing": "end_of_period", "coupon": "NEXTYEAR"}

    quote = api.ok("POST", f"/v1/subscriptions/{sub['id']}/preview_change", body)
    assert quote["next_renewal_amount"] == 25200 - 2520

    changed = api.ok("POST", f"/v1/subscriptions/{sub['id']}/change", body)
    assert changed["discount"] == {"coupon": "NEXTYEAR", "ends_after_period": "2027-04-10T10:00:00Z"}


# --- a coupon on an existing subscription ---------------------------------------------------


def test_a_coupon_put_on_a_subscription_discounts_its_renewals(api):
    clock = api.clock("2026-03-10T10:00:00Z")
    coupon(api, "LOYAL", amount_off=500, duration="repeating", duration_periods=2)
    customer, sub = api.subscribed("standard", "monthly", test_clock=clock["id"])

    answered = api.ok("POST", f"/v1/subscriptions/{sub['id']}/discount", {"coupon": "LOYAL"})

    assert answered["object"] == "subscription" and answered["id"] == sub["id"]
    assert answered["discount"] == {"coupon": "LOYAL", "ends_after_period": "2026-06-10T10:00:00Z"}
    assert [e["data"]["applied_to"] for e in events(api, customer["id"], "coupon.redeemed")] == ["subscription"]
    totals = []
    for when in ("2026-04-10T10:00:00Z", "2026-05-10T10:00:00Z", "2026-06-10T10:00:00Z"):
        api.advance(clock["id"], when)
        totals.append(invoice_of(api, customer["id"])["total"])
    assert totals == [2500, 2500, 3000]
    assert api.ok("GET", f"/v1/subscriptions/{sub['id']}")["discount"] is None


@pytest.mark.parametrize("code, status, error", [
    ("NOSUCH", 404, "coupon_not_found"),
    ("ONLYBASIC", 409, "coupon_not_applicable"),
])
def test_putting_a_coupon_that_does_not_apply_changes_nothing(api, code, status, error):
    coupon(api, "ONLYBASIC", plans=["basic"])
    _, sub = api.subscribed("standard", "monthly")
    assert_error(api.post(f"/v1/subscriptions/{sub['id']}/discount", {"coupon": code}), status, error, "coupon")
    assert api.ok("GET", f"/v1/subscriptions/{sub['id']}")["discount"] is None
    assert api.ok("GET", "/v1/coupons/ONLYBASIC")["times_redeemed"] == 0


def test_putting_a_coupon_on_an_unknown_subscription_is_a_404(api):
    coupon(api, "ANY")
    assert_error(api.post("/v1/subscriptions/sub_nope/discount", {"coupon": "ANY"}), 404, "not_found")
    assert_error(api.post("/v1/subscriptions/sub_nope/discount", {}), 422, "invalid_request", "coupon")
