"""Tax and discount on a charge: the one place a total is computed from its lines.

An invoice, a plan-change preview and a quote all price their lines here, so what a preview
shows is what the invoice charges, to the cent.

- Tax follows the billing country (and region, when the table has a rate for it): no rate,
  no tax. A business customer with a tax id in another country of the seller's tax union pays
  no tax (reverse charge); the invoice says so on a tax line of rate 0.
- Tax is computed once on the net of the charge lines (prices, credits for unused time, the
  discount), through the one rounding function, so every line, including a credit, carries
  its share, and a negative net (a credit worth more than the new price) gives its tax back.
- Tax-exclusive prices: `total = subtotal - discount + tax`. Tax-inclusive prices: the total is
  `subtotal - discount`, and `tax` is the part of it that is tax.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from creditflow.catalog.models import Catalog
from creditflow.kit.money import prorate, round_half_up

REVERSE_CHARGE = "Reverse charge: tax to be accounted for by the customer"


@dataclass(frozen=True)
class TaxTreatment:
    """How one customer's charges are taxed."""

    place: str | None  # the country or country-region taxed for; None: no rate applies
    rate: Decimal | None  # percent
    inclusive: bool = False
    reverse_charge: bool = False

    @property
    def applies(self) -> bool:
        return self.rate is not None

    def tax_of(self, net: int) -> int:
        """The tax on a net amount (negative for a credit), rounded half up to the minor unit."""
        if self.rate is None or self.reverse_charge or not net:
            return 0
        share = Fraction(self.rate) / 100
        if self.inclusive:
            return net - round_half_up(net / (1 + share))
        return round_half_up(net * share)

    def line(self, amount: int) -> dict[str, Any]:
        if self.reverse_charge:
            description = REVERSE_CHARGE
        else:
            description = f"Tax ({_percent(self.rate)}%, {self.place})" + (" included" if self.inclusive else "")
        return {"kind": "tax", "description": description, "amount": amount, "rate": _percent(self.rate),
                "country": self.place}


NO_TAX = TaxTreatment(None, None)


def treatment_for(catalog: Catalog, bill_to: dict[str, Any] | None) -> TaxTreatment:
    """The treatment of a customer with these billing details under the catalog's tax table."""
    taxes = catalog.taxes
    details = bill_to or {}
    country = details.get("country")
    inclusive = taxes.prices == "inclusive"
    seller_country = catalog.seller.country if catalog.seller else None
    if details.get("tax_id") and country != seller_country and taxes.same_union(country, seller_country):
        return TaxTreatment(country, Decimal(0), inclusive, reverse_charge=True)
    found = taxes.rate_for(country, (details.get("address") or {}).get("state"))
    if found is None:
        return TaxTreatment(None, None, inclusive)
    return TaxTreatment(found[0], found[1], inclusive)


@dataclass(frozen=True)
class Priced:
    subtotal: int  # the charge lines' sum (a credit for unused time is a negative line)
    discount: int  # taken off by a coupon, positive
    tax: int
    total: int  # what is owed: negative when credits exceed the charges
    tax_line: dict[str, Any] | None  # absent when no rate applies

    def lines(self, charge_lines: list[dict[str, Any]], discount_description: str | None = None) -> list[dict]:
        """The charge lines followed by the discount line and the tax line, as shown."""
        shown = list(charge_lines)
        if self.discount:
            shown.append({"kind": "discount", "description": discount_description or "Discount",
                          "amount": -self.discount})
        if self.tax_line is not None:
            shown.append(self.tax_line)
        return shown


def price(amounts: Iterable[int], treatment: TaxTreatment, *, discount: int = 0) -> Priced:
    """Price charge lines: their sum, less the discount, with tax. The discount never takes more
    than the positive net (it can't turn a charge into a credit)."""
    subtotal = sum(amounts)
    discount = max(0, min(discount, subtotal))
    net = subtotal - discount
    tax = treatment.tax_of(net)
    total = net if treatment.inclusive else net + tax
    return Priced(subtotal, discount, tax, total, treatment.line(tax) if treatment.applies else None)


def tax_share(invoice, amount: int, *, already: int = 0) -> int:
    """The tax in `amount` of what an invoice collected, after `already` was given back: each
    refund gives back its proportion of the invoice's tax, counted on the running total so that
    the refunds of a whole invoice give back exactly its tax."""
    if not invoice.tax or invoice.total <= 0:
        return 0
    return prorate(already + amount, invoice.tax, invoice.total) - prorate(already, invoice.tax, invoice.total)


def with_tax(invoice, value: int) -> int:
    """What `value`, worth before tax, cost on an invoice whose tax was added on top (the unused
    value of a term priced before tax); `value` itself when the invoice had no tax or its
    prices included it."""
    before_tax = invoice.subtotal - invoice.discount
    if not invoice.tax or before_tax <= 0 or invoice.total == before_tax:
        return value
    return prorate(value, invoice.total, before_tax)


def _percent(rate: Decimal | None) -> str:
    """A percent as the API writes it: "19", "7.7"."""
    if rate is None:
        return ""
    text = format(rate.normalize(), "f")
    return text
