"""Coupons: a percent or an amount off, for one charge, a number of periods or forever, limited
to plans, terms or bundles, redeemable until a date and up to a number of times.

- `models`: coupons, their redemptions, and the discount a subscription carries.
- `rules` (pure): what a coupon is worth on an amount, what it applies to, and when it stops.
- `service`: create and read coupons, check one for a purchase, redeem it (counted exactly
  under concurrency by one conditional UPDATE), give a redemption back when its purchase
  fails, and move a subscription's discount on as its charges are paid.
"""
