"""The promotion-code field of the review screens: a code typed there is checked and priced as
the purchase will be (nothing is redeemed until the customer confirms), and a code that can't
be used says why, next to the field."""

from __future__ import annotations

from dataclasses import dataclass

from creditflow.coupon.rules import Target
from creditflow.coupon.service import Discount, check_coupon, discount_on
from creditflow.customer.billing import bill_to
from creditflow.customer.service import customer_now
from creditflow.invoicing.tax import Priced, price, treatment_for
from creditflow.kit.errors import CreditflowError

SENTENCES = {
    "coupon_not_found": "That promotion code doesn't exist. Check the spelling and try again.",
    "coupon_not_applicable": "That promotion code can't be used on this purchase.",
    "coupon_expired": "That promotion code has expired.",
    "coupon_exhausted": "That promotion code has been used up.",
}


def sentence(code: str) -> str:
    return SENTENCES.get(code, "That promotion code can't be used.")


@dataclass(frozen=True)
class Promotion:
    code: str  # as typed ("" when none)
    discount: Discount | None
    error: str | None
    charge: Priced  # the price with the discount (and tax), as it will be charged

    @property
    def applied(self) -> str:
        """The code to send with the purchase: only one that applied."""
        return self.code if self.discount is not None else ""


def promotion(ctx, db, customer, code: str, target: Target, amount: int) -> Promotion:
    """Price `amount` for the customer with the code typed (if any)."""
    code = (code or "").strip()[:64]
    discount, error = None, None
    if code:
        try:
            coupon = check_coupon(db, code, target, customer_now(ctx, db, customer.id))
            discount = discount_on(coupon, amount, new=True)
        except CreditflowError as exc:
            error = sentence(exc.code)
    charge = price([amount], treatment_for(ctx.catalog, bill_to(customer)),
                   discount=discount.amount if discount else 0)
    return Promotion(code, discount, error, charge)
