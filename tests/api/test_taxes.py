"""Tax on invoices, previews and quotes, under the sample catalog's table (seller in Ireland,
EU VAT, GB and a few others; prices exclusive of tax)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from api_kit import SUPPORT_KEY

from creditflow.kit.money import round_half_up

SELLER = {"name": "Example AI Ltd", "address": "1 Main St, Dublin 2, D02 X285, Ireland", "tax_id": "IE6388047V",
          "country": "IE"}


def _invoices(api, customer):
    return api.ok("GET", f"/v1/invoices?customer={customer['id']}")["data"]


def test_a_consumer_pays_the_tax_of_their_country_on_top_of_the_price(any_api):
    api = any_api
    customer, sub = api.subscribed("standard", "monthly", country="DE")
    [invoice] = _invoices(api, customer)
    assert (invoice["subtotal"], invoice["discount"], invoice["tax"], invoice["total"]) == (3000, 0, 570, 3570)
    assert invoice["lines"][-1] == {"kind": "tax", "description": "Tax (19%, DE)", "amount": 570, "rate": "19",
                                    "country": "DE", "period_start": None, "period_end": None}
    assert "rate" not in invoice["lines"][0]  # tax fields only on tax lines
    assert invoice["seller"] == SELLER
    assert [attempt["amount"] for attempt in invoice["attempts"]] == [3570]  # the card paid the total
    assert invoice["status"] == "paid" and sub["status"] == "active"


def test_a_business_elsewhere_in_the_union_is_reverse_charged(any_api):
    api = any_api
    customer = api.customer(country="FR")
    api.ok("POST", f"/v1/customers/{customer['id']}", {"tax_id": "FR40303265045"})
    api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "basic", "term": "monthly"})
    api.ok("POST", f"/v1/customers/{customer['id']}/top_ups", {"bundle": "credits_1000"})
    _, invoice = _invoices(api, customer)
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (1000, 0, 1000)
    [tax] = [line for line in invoice["lines"] if line["kind"] == "tax"]
    assert (tax["rate"], tax["country"], tax["amount"]) == ("0", "FR", 0)
    assert tax["description"].startswith("Reverse charge")


@pytest.mark.parametrize("country, tax_lines", [("US", []), (None, [])])
def test_no_rate_no_tax(any_api, country, tax_lines):
    api = any_api
    customer, _ = api.subscribed("basic", "monthly", **({"country": country} if country else {}))
    [invoice] = _invoices(api, customer)
    assert (invoice["tax"], invoice["total"]) == (0, 900)
    assert [line for line in invoice["lines"] if line["kind"] == "tax"] == tax_lines


@pytest.mark.parametrize("at", ["2026-03-10T10:00:01Z", "2026-03-25T12:00:00Z", "2026-04-09T23:59:59Z"])
def test_an_upgrades_preview_shows_its_tax_and_the_quote_is_what_is_charged(any_api, at):
    api = any_api
    clock = api.clock("2026-03-10T10:00:00Z")
    customer = api.customer(test_clock=clock["id"], country="GB")
    sub = api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "monthly"})
    api.advance(clock["id"], at)
    quote = api.ok("POST", f"/v1/subscriptions/{sub['id']}/preview_change",
                   {"plan": "ultimate", "term": "monthly", "timing": "immediate"})
    kinds = [line["kind"] for line in quote["lines"]]
    assert kinds == ["new_plan", "unused_time", "tax"]
    net = quote["lines"][0]["amount"] + quote["lines"][1]["amount"]
    assert quote["lines"][2]["amount"] == round_half_up(Fraction(net) * Fraction(20, 100))
    assert quote["amount_due"] == sum(line["amount"] for line in quote["lines"])
    assert quote["next_renewal_amount"] == 6000  # 5000 and 20% tax

    api.ok("POST", f"/v1/subscriptions/{sub['id']}/change",
           {"plan": "ultimate", "term": "monthly", "timing": "immediate", "quote": quote["id"]})
    change = _invoices(api, customer)[-1]
    assert change["total"] == quote["amount_due"] == change["amount_paid"]
    assert change["subtotal"] + change["tax"] == change["total"]
    assert [line["amount"] for line in change["lines"]] == [line["amount"] for line in quote["lines"]]


def test_renewals_are_taxed_with_the_details_of_their_day(any_api):
    api = any_api
    clock = api.clock("2026-03-10T10:00:00Z")
    customer = api.customer(test_clock=clock["id"], country="IE")
    api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "basic", "term": "monthly"})
    api.ok("POST", f"/v1/customers/{customer['id']}", {"country": "NL"})
    api.advance(clock["id"], "2026-04-10T10:00:01Z")
    first, renewal = _invoices(api, customer)
    assert (first["tax"], first["total"], first["bill_to"]["country"]) == (207, 1107, "IE")  # 23% of 900
    assert (renewal["tax"], renewal["total"], renewal["bill_to"]["country"]) == (189, 1089, "NL")  # 21%
    assert renewal["status"] == "paid" and renewal["amount_paid"] == 1089


def test_a_refund_gives_back_its_share_of_the_tax(any_api):
    api = any_api
    customer, _ = api.subscribed("standard", "monthly", country="DE")
    [invoice] = _invoices(api, customer)
    api.ok("POST", "/v1/refunds", {"invoice": invoice["id"], "reason": "goodwill", "amount": 1000}, key=SUPPORT_KEY)
    api.ok("POST", "/v1/refunds", {"invoice": invoice["id"], "reason": "unhappy"}, key=SUPPORT_KEY)
    events = api.ok("GET", f"/v1/events?customer={customer['id']}&type=refund.created&limit=10")["data"]
    shares = sorted((event["data"]["amount"], event["data"]["tax"]) for event in events)
    # 570 of 3570 is tax: 1000 holds 159.66 -> 160, the remaining 2570 holds 410.34 -> 410.
    assert shares == [(1000, 160), (2570, 410)]
    assert sum(tax for _, tax in shares) == invoice["tax"]


def test_ending_at_once_refunds_the_unused_time_with_its_tax(any_api):
    api = any_api
    clock = api.clock("2026-03-01T00:00:00Z")
    customer = api.customer(test_clock=clock["id"], country="DE")
    sub = api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "monthly"})
    api.advance(clock["id"], "2026-03-16T12:00:00Z")  # half of March's 31 days are left
    api.ok("POST", f"/v1/subscriptions/{sub['id']}/cancel",
           {"at_period_end": False, "refund": "prorated", "reason": "moving away"}, key=SUPPORT_KEY)
    [event] = api.ok("GET", f"/v1/events?customer={customer['id']}&type=refund.created")["data"]
    # 15.5 of 31 days of 3000 is 1500 before tax; 19% tax on top was paid on it too.
    assert (event["data"]["amount"], event["data"]["tax"]) == (1785, 285)
