"""Every change of a customer's credits records its event with the change: spends (on PostgreSQL
also the one-statement spend), spend refunds, and each step of a hold's life."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from creditflow.credits.holds import hold_credits, release_hold, settle_hold
from creditflow.credits.jobs import expire_due
from creditflow.credits.spend import refund_spend, spend_credits
from creditflow.events.models import Event

from .credit_kit import START, new_customer


def _events(ctx, cid: str) -> list[tuple[str, dict]]:
    with ctx.db.transaction(readonly=True) as session:
        return [(e.type, e.data) for e in session.scalars(
            select(Event).where(Event.customer_id == cid, Event.type != "customer.created").order_by(Event.seq))]


def test_spends_and_their_refunds_record_events(ctx):
    cid = new_customer(ctx)
    first = spend_credits(ctx, cid, amount="10", feature="standard_models", reference="job-1")
    # The second spend has nothing due first: on PostgreSQL it is the one-statement path.
    second = spend_credits(ctx, cid, amount="2.5", feature="standard_models", reference="job-2")
    refund_spend(ctx, cid, reference="job-1")

    events = _events(ctx, cid)
    assert [type_ for type_, _ in events] == [
        "credits.granted", "credits.spent", "credits.spent", "credits.spend_refunded"]
    assert events[1][1] == {"spend": first.id, "reference": "job-1", "feature": "standard_models",
                            "amount": "10", "balance": "90"}
    assert events[2][1] == {"spend": second.id, "reference": "job-2", "feature": "standard_models",
                            "amount": "2.5", "balance": "87.5"}
    assert events[3][1] == {"spend": first.id, "reference": "job-1", "amount": "10", "expired": "0",
                            "balance": "97.5"}


def test_a_replayed_spend_records_no_second_event(ctx):
    cid = new_customer(ctx)
    for _ in range(2):
        spend_credits(ctx, cid, amount="1", feature="standard_models", reference="job-1")
        spend_credits(ctx, cid, amount="1", feature="standard_models", reference="job-2")
    assert [type_ for type_, _ in _events(ctx, cid)].count("credits.spent") == 2


def test_each_step_of_a_hold_records_an_event(ctx):
    cid = new_customer(ctx)
    settled = hold_credits(ctx, cid, amount="30", feature="standard_models", reference="render-1", ttl_seconds=600)
    settle_hold(ctx, settled.id, amount="12.25")
    released = hold_credits(ctx, cid, amount="5", feature="standard_models", reference="render-2", ttl_seconds=600)
    release_hold(ctx, released.id)
    expiring = hold_credits(ctx, cid, amount="7", feature="standard_models", reference="render-3", ttl_seconds=60)
    expire_due(ctx, START + timedelta(seconds=61))

    events = _events(ctx, cid)
    assert [type_ for type_, _ in events] == [
        "credits.granted", "credits.hold_placed", "credits.hold_settled", "credits.hold_placed",
        "credits.hold_released", "credits.hold_placed", "credits.hold_expired"]
    assert events[1][1] == {"hold": settled.id, "reference": "render-1", "feature": "standard_models",
                            "amount": "30", "balance": "70", "expires_at": "2026-03-10T10:10:00Z"}
    assert events[2][1] == {"hold": settled.id, "reference": "render-1", "amount": "30", "settled": "12.25",
                            "released": "17.75"}
    assert events[4][1] == {"hold": released.id, "reference": "render-2", "amount": "5"}
    assert events[6][1] == {"hold": expiring.id, "reference": "render-3", "amount": "7"}
