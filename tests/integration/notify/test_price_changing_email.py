"""The notice of a moved price (`creditflow catalog migrate`) reaches the customer once, over a
real SMTP server, with both prices, the date and a link to the billing page."""

from __future__ import annotations

import test_emails

from creditflow.purchase.subscribe import subscribe
from creditflow.subscription.reprice import ALREADY, MOVED, cohort, move_to_price, price_move

# The real SMTP server (aiosmtpd) and a customer with a card, as the other email tests use them.
inbox, shop, _send = test_emails.inbox, test_emails.shop, test_emails._send


def _migrate(ctx, notice_days: int = 30, price: int = 3500) -> list[str]:
    move = price_move(ctx.catalog, "standard", "monthly", price, notice_days)
    with ctx.db.transaction(readonly=True) as session:
        ids = cohort(session, "standard", "monthly")
    outcomes = []
    for sub_id in ids:
        with ctx.db.transaction() as session:
            outcomes.append(move_to_price(ctx, session, sub_id, move))
    return outcomes


def test_the_price_change_notice_is_emailed_once(shop, inbox):
    ctx, mailer, _, customer_id = shop
    subscribe(ctx, customer_id, "standard", "monthly")
    _send(ctx, mailer)
    inbox.messages.clear()  # the receipt

    assert _migrate(ctx, notice_days=30) == [MOVED]  # March 10th + 30 days: the April 10th renewal
    _send(ctx, mailer)
    assert _migrate(ctx, notice_days=30) == [ALREADY]
    _send(ctx, mailer)

    [notice] = inbox.messages
    assert notice["To"] == "ada@example.com"
    assert notice["Subject"] == "The price of your Standard plan changes on 10 April 2026"
    text = notice.get_body(("plain",)).get_content()
    assert "changes from $30.00 to $35.00, starting with your renewal on 10 April 2026" in text
    assert "Until then you keep paying $30.00." in text
    link = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Open your billing page: "))
    assert link.startswith("https://billing.example.com/billing/session/ps_")
    html = notice.get_body(("html",)).get_content()
    assert "<strong>$35.00</strong>" in html and "10 April 2026" in html


def test_a_longer_notice_moves_the_price_to_a_later_renewal(shop, inbox):
    ctx, mailer, _, customer_id = shop
    subscribe(ctx, customer_id, "standard", "monthly")
    assert _migrate(ctx, notice_days=45) == [MOVED]  # April 10th is too soon: May 10th
    _send(ctx, mailer)
    [notice] = [m for m in inbox.messages if m["Subject"].startswith("The price of")]
    assert notice["Subject"] == "The price of your Standard plan changes on 10 May 2026"
