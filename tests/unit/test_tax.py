"""Tax and discount arithmetic: totals add up to the cent, and who pays which rate."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditflow.catalog.loader import CatalogError, load_catalog, load_catalog_text
from creditflow.invoicing.tax import REVERSE_CHARGE, TaxTreatment, price, treatment_for

CATALOG = load_catalog()  # the sample catalog: seller in Ireland, EU VAT, GB, ...

rates = st.decimals(min_value=0, max_value=Decimal("99.99"), places=2)
amounts = st.lists(st.integers(-10**7, 10**7), min_size=1, max_size=5)


@given(amounts=amounts, rate=rates, discount=st.integers(0, 10**7))
def test_exclusive_totals_add_up_and_tax_is_the_nearest_cent(amounts, rate, discount):
    priced = price(amounts, TaxTreatment("DE", rate), discount=discount)
    assert priced.subtotal == sum(amounts)
    assert priced.subtotal - priced.discount + priced.tax == priced.total
    assert 0 <= priced.discount <= max(priced.subtotal, 0)
    exact = Fraction(priced.subtotal - priced.discount) * Fraction(rate) / 100
    assert abs(priced.tax - exact) <= Fraction(1, 2)
    assert priced.tax_line["amount"] == priced.tax and priced.tax_line["country"] == "DE"


@given(amounts=amounts, rate=rates, discount=st.integers(0, 10**7))
def test_inclusive_prices_contain_their_tax(amounts, rate, discount):
    priced = price(amounts, TaxTreatment("FR", rate, inclusive=True), discount=discount)
    net = priced.subtotal - priced.discount
    assert priced.total == net
    # The tax is what the price holds beyond its value before tax, to the nearest cent.
    exact = Fraction(net) - Fraction(net) / (1 + Fraction(rate) / 100)
    assert abs(priced.tax - exact) <= Fraction(1, 2)
    assert abs(priced.tax) <= abs(net)


@given(amounts=amounts)
def test_no_rate_means_no_tax_and_no_tax_line(amounts):
    priced = price(amounts, TaxTreatment(None, None))
    assert (priced.tax, priced.total, priced.tax_line) == (0, sum(amounts), None)


def test_a_credit_worth_more_than_the_charge_gives_its_tax_back():
    priced = price([900, -4000], TaxTreatment("DE", Decimal(19)))
    assert (priced.subtotal, priced.tax, priced.total) == (-3100, -589, -3689)


def test_a_discount_never_turns_a_charge_into_a_credit():
    priced = price([1000], TaxTreatment("IE", Decimal(23)), discount=5000)
    assert (priced.discount, priced.tax, priced.total) == (1000, 0, 0)


def test_rounding_is_half_up_to_the_cent():
    assert price([2950], TaxTreatment("DE", Decimal(19))).tax == 561  # 560.5
    assert price([-2950], TaxTreatment("DE", Decimal(19))).tax == -561  # halves away from zero
    assert price([1000], TaxTreatment("CH", Decimal("8.1"))).tax == 81
    assert price([1190], TaxTreatment("DE", Decimal(19), inclusive=True)).tax == 190


@pytest.mark.parametrize("bill_to, place, rate, reverse", [
    ({"country": "DE"}, "DE", "19", False),  # a consumer abroad pays their country's rate
    ({"country": "DE", "tax_id": "DE136695976"}, "DE", "0", True),  # a business in the union: reverse charge
    ({"country": "IE", "tax_id": "IE6388047V"}, "IE", "23", False),  # a business at home pays tax
    ({"country": "GB", "tax_id": "GB980780684"}, "GB", "20", False),  # outside the union: no reverse charge
    ({"country": "US", "address": {"state": "CA"}}, None, None, False),  # no US rate in the sample
    ({"country": None}, None, None, False),
    (None, None, None, False),
])
def test_who_pays_which_rate(bill_to, place, rate, reverse):
    treatment = treatment_for(CATALOG, bill_to)
    assert treatment.place == place
    assert (str(treatment.rate) if treatment.rate is not None else None) == rate
    assert treatment.reverse_charge is reverse


def test_a_region_rate_wins_over_its_countrys():
    catalog = load_catalog_text(_catalog('taxes: {rates: {US: "5", US-CA: "7.25"}}'))
    assert treatment_for(catalog, {"country": "US", "address": {"state": "CA"}}).place == "US-CA"
    assert treatment_for(catalog, {"country": "US", "address": {"state": "NY"}}).place == "US"
    assert price([1000], treatment_for(catalog, {"country": "US", "address": {"state": "CA"}})).tax == 73


def test_reverse_charge_is_a_zero_tax_line_that_says_so():
    priced = price([3000], treatment_for(CATALOG, {"country": "FR", "tax_id": "FR40303265045"}))
    assert priced.tax_line == {"kind": "tax", "description": REVERSE_CHARGE, "amount": 0, "rate": "0",
                               "country": "FR"}
    assert priced.total == 3000


@pytest.mark.parametrize("taxes, message", [
    ('taxes: {rates: {XX: "19"}}', "taxes.rates.XX: 'XX' is not an ISO 3166-1"),
    ('taxes: {rates: {DE: "100"}}', "taxes.rates.DE: a rate must be a percent from 0 up to 100"),
    ('taxes: {rates: {DE: "-1"}}', "taxes.rates.DE: a rate must be a percent from 0 up to 100"),
    ('taxes: {rates: {DE: "abc"}}', "taxes.rates.DE: a rate must be a percent"),
    ('taxes: {rates: {DE: "19.12345"}}', "taxes.rates.DE: a rate has at most 4 decimals"),
    ('taxes: {prices: gross}', "taxes.prices: unknown prices 'gross'"),
    ('taxes: {unions: {EU: [DE, ZZ]}}', "taxes.unions.EU[1]: 'ZZ' is not an ISO 3166-1"),
    ('taxes: {rates: {NO: "25"}}', 'quote the key, e.g. "NO"'),
    ('taxes: {rate: {DE: "19"}}', "taxes.rate: unknown key 'rate'"),
    ('seller: {address: "1 Main St"}', "seller.name: missing required field 'name'"),
    ('seller: {name: "X", country: "Germany"}', "seller.country: 'Germany' is not an ISO 3166-1"),
])
def test_a_bad_tax_table_or_seller_is_refused_with_its_place(taxes, message):
    with pytest.raises(CatalogError) as refused:
        load_catalog_text(_catalog(taxes), source="catalog.yaml")
    assert message in str(refused.value)
    assert str(refused.value).startswith("catalog.yaml:")


def test_the_sellers_country_comes_from_its_tax_id():
    assert load_catalog_text(_catalog('seller: {name: "X", tax_id: "EL094259216"}')).seller.country == "GR"
    assert CATALOG.seller.as_dict() == {"name": "Example AI Ltd", "address": "1 Main St, Dublin 2, D02 X285, Ireland",
                                        "tax_id": "IE6388047V", "country": "IE"}


def _catalog(extra: str) -> str:
    return f"""
currency: usd
free: {{daily_credits: "100"}}
plans:
  - {{code: standard, name: Standard, rank: 1, monthly_credits: "8000", prices: {{monthly: 3000}}}}
features: {{}}
{extra}
"""


@given(tax=st.integers(0, 10**5), extra=st.integers(1, 10**6), cuts=st.lists(st.integers(1, 10**5), max_size=6))
def test_refunds_of_a_whole_invoice_give_back_exactly_its_tax(tax, extra, cuts):
    from types import SimpleNamespace

    from creditflow.invoicing.tax import tax_share

    invoice = SimpleNamespace(tax=tax, total=tax + extra)
    given_back, refunded = 0, 0
    for cut in cuts:
        amount = min(cut, invoice.total - refunded)
        if amount <= 0:
            break
        share = tax_share(invoice, amount, already=refunded)
        assert 0 <= share <= amount
        given_back, refunded = given_back + share, refunded + amount
    given_back += tax_share(invoice, invoice.total - refunded, already=refunded)  # the rest
    assert given_back == tax
