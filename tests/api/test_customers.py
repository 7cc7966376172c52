from __future__ import annotations

from api_kit import assert_error


def test_create_read_and_find_a_customer(any_api):
    api = any_api
    created = api.ok("POST", "/v1/customers", {"external_id": "u-1", "email": "ada@example.com", "name": "Ada",
                                              "country": "fr", "timezone": "Europe/Paris"})
    assert created["id"].startswith("cus_")
    assert created["object"] == "customer"
    assert (created["external_id"], created["email"], created["name"], created["country"], created["timezone"]) == (
        "u-1", "ada@example.com", "Ada", "FR", "Europe/Paris")
    assert created["plan"] == "free" and created["balance"] == 0 and created["currency"] == "usd"
    assert created["test_clock"] is None
    assert created["created_at"].endswith("Z")

    assert api.ok("GET", f"/v1/customers/{created['id']}") == created
    found = api.ok("GET", "/v1/customers?external_id=u-1")
    assert found["object"] == "list" and found["has_more"] is False
    assert [c["id"] for c in found["data"]] == [created["id"]]
    assert api.ok("GET", "/v1/customers?external_id=nobody")["data"] == []


def test_external_id_is_unique(api):
    api.customer("dup")
    response = api.post("/v1/customers", {"external_id": "dup", "email": "b@example.com"})
    assert_error(response, 409, "customer_exists", "external_id")


def test_bad_fields_name_the_field_and_create_nothing(api):
    assert_error(api.post("/v1/customers", {"external_id": "a", "email": "not-an-email"}), 422, "invalid_request",
                 "email")
    assert_error(api.post("/v1/customers", {"external_id": "a", "email": "a@example.com", "timezone": "Mars/Base"}),
                 422, "invalid_request", "timezone")
    assert_error(api.post("/v1/customers", {"external_id": "a", "email": "a@example.com", "test_clock": "clock_x"}),
                 404, "not_found", "test_clock")
    assert api.ok("GET", "/v1/customers")["data"] == []


def test_customer_list_pages(api):
    ids = [api.customer(f"p{i}", payment_method=None)["id"] for i in range(5)]
    first = api.ok("GET", "/v1/customers?limit=2")
    assert [c["id"] for c in first["data"]] == ids[:2] and first["has_more"] is True
    rest = api.ok("GET", f"/v1/customers?limit=10&starting_after={ids[1]}")
    assert [c["id"] for c in rest["data"]] == ids[2:] and rest["has_more"] is False


def test_payment_method(api):
    customer = api.customer(payment_method=None)
    assert_error(api.get(f"/v1/customers/{customer['id']}/payment_method"), 404, "no_payment_method")
    updated = api.ok("POST", f"/v1/customers/{customer['id']}/payment_method", {"token": "pm_card_declined"})
    assert updated == {"object": "payment_method", "id": "pm_card_declined", "brand": "visa", "last4": "0002",
                       "exp_month": 12, "exp_year": 2034}
    assert api.ok("GET", f"/v1/customers/{customer['id']}/payment_method") == updated
    assert api.ok("GET", f"/v1/customers/{customer['id']}")["payment_method"] == "pm_card_declined"
    replaced = api.ok("POST", f"/v1/customers/{customer['id']}/payment_method", {"token": "pm_card_ok_then_declined"})
    assert (replaced["brand"], replaced["last4"]) == ("mastercard", "4444")
    [event] = api.ok("GET", f"/v1/events?customer={customer['id']}&type=payment_method.updated&limit=1")["data"]
    assert event["data"]["card"] == {"brand": "visa", "last4": "0002", "exp_month": 12, "exp_year": 2034}
    assert_error(api.post(f"/v1/customers/{customer['id']}/payment_method", {"token": "pm_bogus"}), 422,
                 "invalid_request", "token")
    assert_error(api.post("/v1/customers/cus_nope/payment_method", {"token": "pm_card_ok"}), 404, "not_found")


def test_catalog(api):
    catalog = api.ok("GET", "/v1/catalog")
    standard = next(p for p in catalog["plans"] if p["code"] == "standard")
    assert standard["monthly_credits"] == "8000"
    assert standard["prices"] == {"monthly": 3000, "quarterly": 7650, "yearly": 25200}
    assert catalog["free"]["daily_credits"] == "100"
    assert any(b["code"] == "credits_1000" and b["credits"] == "1000" for b in catalog["bundles"])


def test_a_customer_language_is_set_on_create_and_changed_or_cleared(api):
    created = api.ok("POST", "/v1/customers", {"external_id": "lang", "email": "l@example.com", "language": "pt-br"})
    assert created["language"] == "pt-BR"
    customer = created["id"]
    assert api.ok("POST", f"/v1/customers/{customer}", {"language": "de"})["language"] == "de"
    assert_error(api.post(f"/v1/customers/{customer}", {"language": "Deutsch bitte"}), 422, "invalid_request",
                 "language")
    assert api.ok("GET", f"/v1/customers/{customer}")["language"] == "de"
    assert api.ok("POST", f"/v1/customers/{customer}", {"language": None})["language"] is None
    assert_error(api.post("/v1/customers", {"external_id": "x", "email": "x@example.com", "language": "12"}),
                 422, "invalid_request", "language")
    assert api.ok("GET", "/v1/customers?external_id=x")["data"] == []
