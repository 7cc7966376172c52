"""The columns of other packages' tables that the ledger's statements read.

What a spend may draw depends on the plan the customer is on (subscriptions), their time zone
(free credits reset at their midnight) and their test clock (customers, test clocks). Those
packages sit above the ledger, since they grant and expire credits through it, so their tables
are named here by the columns read instead of imported. The migrations define them.
"""

from __future__ import annotations

from sqlalchemy import String, column, table

from creditflow.kit.db.base import UTCDateTime

customers = table("customers", column("id", String), column("timezone", String),
                  column("test_clock_id", String))
clocks = table("test_clocks", column("id", String), column("frozen_time", UTCDateTime()))
subscriptions = table("subscriptions", column("customer_id", String), column("plan", String),
                      column("status", String))
