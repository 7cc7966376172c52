"""Property: whatever the prices, the tax rate and the instant of an immediate change, its quote's
lines add up to the amount due, the invoice adds up, the card is charged exactly the quote, and
an excess credit reaches the account balance tax included."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from creditflow.catalog.loader import load_catalog_text
from creditflow.customer.billing import update_billing_details
from creditflow.invoicing.models import Invoice
from creditflow.purchase.change import change_subscription
from creditflow.purchase.subscribe import subscribe
from creditflow.subscription.change import preview_change

START = datetime(2026, 1, 31, 10, tzinfo=timezone.utc)


def _catalog(low: int, high: int, rate: str, inclusive: bool) -> str:
    return f"""
currency: usd
free: {{daily_credits: "100"}}
plans:
  - {{code: low, name: Low, rank: 1, monthly_credits: "100", prices: {{monthly: {low}}}}}
  - {{code: high, name: High, rank: 2, monthly_credits: "500", prices: {{monthly: {high}}}}}
features: {{}}
seller: {{name: "Seller", tax_id: "IE6388047V"}}
taxes: {{prices: {"inclusive" if inclusive else "exclusive"}, unions: {{EU: [DE, IE]}}, rates: {{DE: "{rate}"}}}}
"""


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(low=st.integers(0, 100_000), high=st.integers(1, 100_000), rate=st.decimals(0, 30, places=2),
       inclusive=st.booleans(), seconds=st.integers(1, 28 * 86400 - 1), downgrade=st.booleans())
def test_an_immediate_change_adds_up_at_any_instant(sqlite_db, sqlite_story, low, high, rate, inclusive, seconds,
                                                   downgrade):
    story = sqlite_story(START)
    story.ctx = dataclasses.replace(story.ctx, catalog=load_catalog_text(_catalog(low, high, rate, inclusive)))
    with sqlite_db.transaction() as session:
        update_billing_details(story.ctx, session, story.customer_id, {"country": "DE"})
    start_plan, target = ("high", "low") if downgrade else ("low", "high")
    sub = subscribe(story.ctx, story.customer_id, start_plan, "monthly")
    story.advance(START + timedelta(seconds=seconds))
    balance_before = story.customer().balance

    with sqlite_db.transaction() as session:
        quote = preview_change(story.ctx, session, sub.id, plan=target, term="monthly", support=downgrade)
        quote_id, due, lines = quote.id, quote.amount_due, quote.lines
    # Tax-inclusive prices: the tax line shows what the prices hold, it adds nothing.
    assert due == sum(line["amount"] for line in lines if not (inclusive and line["kind"] == "tax")) >= 0
    credited = sum(line["amount"] for line in lines if line["kind"] == "account_balance" and line["amount"] > 0)

    change_subscription(story.ctx, sub.id, plan=target, term="monthly", quote=quote_id, support=downgrade,
                        reason="property" if downgrade else None)
    with sqlite_db.transaction(readonly=True) as session:
        invoice = session.scalars(select(Invoice).where(Invoice.customer_id == story.customer_id)
                                  .order_by(Invoice.number.desc())).first()
        invoice_lines = [(line.kind, line.amount) for line in invoice.lines]
        assert invoice.status == "paid"
        if inclusive:
            assert invoice.total == invoice.subtotal - invoice.discount
        else:
            assert invoice.total == invoice.subtotal - invoice.discount + invoice.tax
        assert invoice.total >= 0 and invoice.amount_paid == due
    assert [(line["kind"], line["amount"]) for line in lines] == invoice_lines
    assert story.customer().balance == balance_before + credited
