"""Teams: a customer with members who spend from its one credit pool.

The customer is the team's owner (it pays, owns the invoices and the plan); members join by an
invitation and may have a monthly limit on what they spend. Auto top-up settings live here too:
which bundle to buy when the pool runs low. The package sits just below `credits`, so that a
spend can check and count a member's monthly usage in its own transaction, and above `coupon`.

- `models`: the tables; `service`: members (invite, accept, roles, limits, suspend, remove) and
  what the subscription package tells a team (its plan, its anchor, its end);
- `usage`: a member's usage this month, checked and counted inside a spend, a hold or a refund;
- `autotopup`: the settings and the claim a worker takes before buying.
"""
