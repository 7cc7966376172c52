"""The worker renews a claimed batch a group at a time (purchase/renewal.py): one transaction
opens the group's invoices and pending attempts, the gateway is called for each, one
transaction settles the answers. The result must be what renewing them one by one (`run_due`,
a group of one) gives, whatever happens in the middle of a group."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from engine_kit import Engine, utc
from sqlalchemy import select

from creditflow.credits.models import CreditAccount, CreditEntry
from creditflow.customer.models import Customer
from creditflow.purchase.payment_method import set_payment_method
from creditflow.events.models import Event
from creditflow.invoicing.models import Invoice, InvoiceLine
from creditflow.invoicing.service import next_number
from creditflow.kit.credits import Credits
from creditflow.payment.sandbox import SandboxGateway
from creditflow.payment.attempts import STALE_PENDING
from creditflow.purchase import renewal as renewal_batch
from creditflow.purchase.change import change_subscription
from creditflow.purchase.renewal import run_due
from creditflow.purchase.cancel import cancel_subscription
from creditflow.purchase.subscribe import subscribe
from creditflow.worker.runner import tick

START = utc(2026, 3, 10, 10)
RENEWAL = utc(2026, 4, 10, 10)
NEXT = utc(2026, 5, 10, 10)


class Crash(BaseException):
    """The worker process dies (not an error the engine could catch)."""


@pytest.fixture
def one_by_one(monkeypatch) -> list[str]:
    """The subscriptions the batch ran alone, in a group of one (after a group's failure)."""
    handed: list[str] = []
    run_alone = renewal_batch._run_alone

    def recording_run_alone(ctx, sub_id, now, owner):
        handed.append(sub_id)
        return run_alone(ctx, sub_id, now, owner)

    monkeypatch.setattr(renewal_batch, "_run_alone", recording_run_alone)
    return handed


@pytest.fixture(autouse=True)
def batch_failures():
    """What the worker logged as failed. A group whose transaction fails falls back to one by
    one, which gets it right too: so a test sees the batch path itself only if nothing failed.
    A test that expects a failure checks it and empties the list."""
    failures: list[str] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = lambda record: failures.append(record.getMessage())
    logger = logging.getLogger("creditflow.worker")
    logger.addHandler(handler)
    try:
        yield failures
    finally:
        logger.removeHandler(handler)
    assert failures == []


def _events(engine: Engine, customer_id: str, since=START) -> list[tuple[str, dict]]:
    with engine.db.transaction(readonly=True) as session:
        return [(e.type, e.data) for e in session.scalars(
            select(Event).where(Event.customer_id == customer_id, Event.created_at >= since).order_by(Event.seq))]


def _entries(engine: Engine, customer_id: str) -> list[tuple]:
    with engine.db.transaction(readonly=True) as session:
        return [(e.kind, e.amount, e.created_at, e.reference is not None) for e in session.scalars(
            select(CreditEntry).where(CreditEntry.customer_id == customer_id).order_by(CreditEntry.seq))]


def _account(engine: Engine, customer_id: str) -> tuple:
    with engine.db.transaction(readonly=True) as session:
        a = session.get(CreditAccount, customer_id)
        return a.granted, a.spent, a.expired, a.held, a.available


def _shape(events: list[tuple[str, dict]], ids: set[str]) -> list[tuple[str, dict]]:
    """Events with the ids that differ between two customers blanked out."""
    return [(type_, {k: ("<id>" if isinstance(v, str) and (v in ids or v[:4] in ("inv_", "lot_", "sub_")) else v)
                     for k, v in data.items() if k != "number"}) for type_, data in events]


def test_a_batch_renewal_writes_what_run_due_writes(engine, one_by_one):
    one, many = engine.customer(), engine.customer()
    sub_one = subscribe(engine.ctx, one, "standard", "monthly")
    sub_many = subscribe(engine.ctx, many, "standard", "monthly")

    assert run_due(engine.ctx, sub_one.id, RENEWAL) >= 1  # one by one
    tick(engine.ctx, RENEWAL)  # the batch (the other is no longer due)
    assert one_by_one == []

    for cus, sub_id in ((one, sub_one.id), (many, sub_many.id)):
        stored = engine.sub(sub_id)
        assert (stored.status, stored.current_term_start, stored.current_term_end, stored.due_at,
                stored.lease_owner, stored.pending_invoice_id, stored.version) == (
            "active", RENEWAL, NEXT, NEXT, None, None, 1)
        assert [(lot.granted, lot.remaining, lot.expires_at, lot.expired_at) for lot in engine.lots(cus)] == [
            (Credits.whole(8000), Credits(0), RENEWAL, RENEWAL), (Credits.whole(8000), Credits.whole(8000), NEXT, None)]
        assert _account(engine, cus) == (Credits.whole(16000), Credits(0), Credits.whole(8000), Credits(0),
                                         Credits.whole(8000))
        assert [(a.status, a.amount, a.completed_at, a.gateway_reference is not None)
                for a in engine.attempts(cus)][-1] == ("succeeded", 3000, RENEWAL, True)
        invoice = engine.invoices(cus)[-1]
        assert (invoice.purpose, invoice.status, invoice.total, invoice.amount_paid, invoice.paid_at,
                invoice.period_start, invoice.period_end, invoice.dedupe_key, invoice.details) == (
            "renewal", "paid", 3000, 3000, RENEWAL, RENEWAL, NEXT, f"renewal:{sub_id}:{START.isoformat()}:1",
            {"subscription": sub_id, "plan": "standard", "term": "monthly", "term_start_offset": 1})
        with engine.db.transaction(readonly=True) as session:
            lines = session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).all()
            assert [(line.kind, line.description, line.amount, line.period_start, line.period_end)
                    for line in lines] == [("subscription", "Standard plan, monthly", 3000, RENEWAL, NEXT)]
    assert _entries(engine, one) == _entries(engine, many)
    ids = {one, many, sub_one.id, sub_many.id}
    renewed_one, renewed_many = _events(engine, one, RENEWAL), _events(engine, many, RENEWAL)
    assert _shape(renewed_one, ids) == _shape(renewed_many, ids)
    assert [t for t, _ in renewed_many] == ["invoice.paid", "credits.expired", "credits.granted",
                                            "subscription.renewed"]
    assert engine.charged(one) == engine.charged(many) == [3000, 3000]


@pytest.mark.parametrize("group", [2, 25])
def test_a_decline_and_a_timeout_in_the_middle_of_a_group(engine, monkeypatch, one_by_one, group):
    monkeypatch.setattr(renewal_batch, "GROUP", group)
    cards = ["pm_card_ok", "pm_card_ok_then_declined", "pm_card_ok", "pm_card_ok", "pm_card_ok"]
    customers = [engine.customer(card) for card in cards]
    subs = [subscribe(engine.ctx, cus, "standard", "monthly").id for cus in customers]
    ok, declined, timeout = [customers[0], customers[2], customers[3]], customers[1], customers[4]
    set_payment_method(engine.ctx, timeout, "pm_card_timeout")

    tick(engine.ctx, RENEWAL)

    assert one_by_one == []  # the decline and the timeout were settled where the batch left them
    for cus in ok:
        assert engine.sub(subs[customers.index(cus)]).current_term_end == NEXT
        assert engine.invoices(cus)[-1].status == "paid"
        assert len(engine.lots(cus)) == 2
    # The decline is dunned, as one by one: past_due, credits expired, a retry in a day.
    failed = engine.sub(subs[1])
    assert (failed.status, failed.next_retry_at, failed.due_at) == ("past_due", RENEWAL + timedelta(days=1),
                                                                    RENEWAL + timedelta(days=1))
    assert [(a.status, a.failure_code) for a in engine.attempts(declined)][-1] == ("failed", "card_declined")
    assert [lot.expired_at for lot in engine.lots(declined)] == [RENEWAL]
    assert [t for t, _ in _events(engine, declined)][-3:] == [
        "invoice.payment_failed", "credits.expired", "subscription.past_due"]
    # The timeout is unknown: no credits, the old term, reconciled by the next tick.
    assert [a.status for a in engine.attempts(timeout)] == ["succeeded", "unknown"]
    assert engine.sub(subs[4]).current_term_end == RENEWAL
    tick(engine.ctx, RENEWAL + timedelta(seconds=1))
    assert engine.sub(subs[4]).current_term_end == NEXT
    assert [a.status for a in engine.attempts(timeout)] == ["succeeded", "succeeded"]
    assert engine.charged(timeout) == [3000, 3000]
    # Every renewal opened once, its invoice numbered without a gap.
    with engine.db.transaction(readonly=True) as session:
        numbers = sorted(session.scalars(select(Invoice.number)))
    assert numbers == list(range(1, 11))
    for cus in customers:
        assert len(engine.invoices(cus)) == 2


class DyingGateway(SandboxGateway):
    """The sandbox, except that the process dies as it sends the second charge of the group."""

    def __init__(self, db):
        super().__init__(db)
        self.calls = 0

    def charge(self, request):
        self.calls += 1
        if self.calls == 2:
            raise Crash
        return super().charge(request)


def test_a_crash_after_the_group_committed_its_attempts_loses_nothing_and_charges_once(db):
    engine = Engine(db, START)
    customers = [engine.customer() for _ in range(3)]
    subs = [subscribe(engine.ctx, cus, "standard", "monthly").id for cus in customers]
    dying = Engine(db, START)
    dying.ctx.gateway = DyingGateway(db)
    with pytest.raises(Crash):
        tick(dying.ctx, RENEWAL, owner="worker-a")

    # Every attempt of the group was committed before the first gateway call; one was charged.
    for cus in customers:
        assert [a.status for a in engine.attempts(cus)] == ["succeeded", "pending"]
    assert [len(engine.charged(cus)) for cus in customers] == [2, 1, 1]

    # Past the lease, before the attempts are stale: another worker leaves them alone.
    tick(engine.ctx, RENEWAL + timedelta(minutes=6), owner="worker-b")
    for cus in customers:
        assert [a.status for a in engine.attempts(cus)] == ["succeeded", "pending"]

    # Stale: the charge that went through completes the renewal; the two that never reached
    # the gateway are not declines: they are charged again at once, once, with no dunning.
    tick(engine.ctx, RENEWAL + STALE_PENDING, owner="worker-b")
    assert engine.sub(subs[0]).current_term_end == NEXT
    for cus in customers[1:]:
        assert [(a.status, a.failure_code) for a in engine.attempts(cus)] == [
            ("succeeded", None), ("failed", "not_charged"), ("succeeded", None)]
    tick(engine.ctx, RENEWAL + STALE_PENDING + timedelta(days=1), owner="worker-b")
    for cus, sub_id in zip(customers, subs):
        assert engine.sub(sub_id).past_due_since is None
        assert engine.charged(cus) == [3000, 3000]
        assert engine.sub(sub_id).status == "active"
        assert engine.invoices(cus)[-1].status == "paid"
        assert len(engine.invoices(cus)) == 2


def test_one_bad_subscription_does_not_hold_up_the_rest_of_its_group(engine, one_by_one, batch_failures):
    customers = [engine.customer() for _ in range(3)]
    subs = [subscribe(engine.ctx, cus, "standard", "monthly") for cus in customers]
    bad = subs[1]
    # A stray invoice already holds the bad one's renewal key: opening it breaks a unique key.
    with engine.db.transaction() as session:
        session.add(Invoice(
            id="inv_stray", number=next_number(session), customer_id=bad.customer_id, subscription_id=bad.id,
            purpose="renewal", status="void", currency="usd", subtotal=0, tax=0, total=0, balance_applied=0,
            amount_paid=0, amount_refunded=0, dedupe_key=f"renewal:{bad.id}:{START.isoformat()}:1", details={},
            created_at=START))

    tick(engine.ctx, RENEWAL)

    for sub in (subs[0], subs[2]):
        assert engine.sub(sub.id).current_term_end == NEXT
        assert engine.charged(sub.customer_id) == [3000, 3000]
    stuck = engine.sub(bad.id)
    assert (stuck.current_term_end, stuck.due_at) == (RENEWAL, RENEWAL + timedelta(minutes=5))  # leased
    assert engine.charged(bad.customer_id) == [3000]
    # The group failed as a whole (nothing committed), then went one by one, where only the
    # bad one failed; a later tick finds it again once the lease is over.
    assert sorted(one_by_one) == sorted(sub.id for sub in subs)
    assert [message.split(" ")[:2] for message in batch_failures] == [["a", "round"], ["due", "work"]]
    batch_failures.clear()


def test_a_renewal_failing_after_another_one_ends_the_round_with_it_leased(engine, monkeypatch, batch_failures):
    """A worker down for two months: the first renewal goes through and the subscription is due
    again at once, but its next renewal fails (a stray invoice holds its key). The round must
    end, with the subscription leased, instead of claiming it over and over."""
    cus = engine.customer()
    sub = subscribe(engine.ctx, cus, "standard", "monthly")
    with engine.db.transaction() as session:
        session.add(Invoice(
            id="inv_stray", number=next_number(session), customer_id=cus, subscription_id=sub.id, purpose="renewal",
            status="void", currency="usd", subtotal=0, tax=0, total=0, balance_applied=0, amount_paid=0,
            amount_refunded=0, dedupe_key=f"renewal:{sub.id}:{START.isoformat()}:2", details={}, created_at=START))
    rounds = []
    open_round = renewal_batch._open_round

    def guarded_open_round(ctx, session, ids, now, owner):
        rounds.append(list(ids))
        if len(rounds) > 3:
            raise Crash("the worker is going round in circles")
        return open_round(ctx, session, ids, now, owner)

    monkeypatch.setattr(renewal_batch, "_open_round", guarded_open_round)
    late = utc(2026, 5, 20)

    tick(engine.ctx, late)

    stored = engine.sub(sub.id)
    assert (stored.current_term_end, stored.due_at) == (NEXT, late + timedelta(minutes=5))
    assert engine.charged(cus) == [3000, 3000]
    # The round that renewed it, then the round that failed on the stray invoice (retried by
    # the unit of work only if the error were transient, which a unique key is not).
    assert rounds == [[sub.id], [sub.id]]
    assert [message.split(" ")[:2] for message in batch_failures] == [["due", "work"]]
    batch_failures.clear()


class EndingGateway(SandboxGateway):
    """Support ends one customer's subscription while its renewal charge is in flight."""

    def __init__(self, engine, victim):
        super().__init__(engine.db)
        self.engine, self.victim = engine, victim

    def charge(self, request):
        if request.customer_id == self.victim.customer_id:
            cancel_subscription(self.engine.ctx, self.victim.id, at_period_end=False, support=True)
        return super().charge(request)


def test_a_subscription_ended_while_its_charge_is_in_flight_is_not_renewed(engine, one_by_one):
    customers = [engine.customer() for _ in range(3)]
    subs = [subscribe(engine.ctx, cus, "standard", "monthly") for cus in customers]
    engine.ctx.gateway = EndingGateway(engine, subs[1])
    engine.at(RENEWAL)

    tick(engine.ctx, RENEWAL)

    assert one_by_one == []  # its charge was settled on its own, the others' together
    for sub in (subs[0], subs[2]):
        assert engine.sub(sub.id).current_term_end == NEXT
    ended = engine.sub(subs[1].id)
    assert (ended.status, ended.current_term_end, ended.due_at) == ("ended", RENEWAL, None)
    assert [lot.expired_at is not None for lot in engine.lots(subs[1].customer_id)] == [True]
    assert engine.event_count("subscription.renewed", subs[1].customer_id) == 0
    assert engine.attempts(subs[1].customer_id)[-1].status == "succeeded"  # charged once, refundable


def test_the_other_cases_in_a_batch_are_renewed_in_the_same_group(engine, one_by_one):
    """A scheduled downgrade, an account balance, a monthly grant and a cancellation, claimed
    with ordinary renewals, are run in the same group, each by its own rules."""
    plain, downgrading, with_balance, quarterly, cancelling = (engine.customer() for _ in range(5))
    subs = {cus: subscribe(engine.ctx, cus, plan, term).id for cus, plan, term in (
        (plain, "standard", "monthly"), (downgrading, "ultimate", "monthly"), (with_balance, "standard", "monthly"),
        (quarterly, "standard", "quarterly"), (cancelling, "standard", "monthly"))}
    change_subscription(engine.ctx, subs[downgrading], plan="basic", term="monthly", timing="end_of_period")
    cancel_subscription(engine.ctx, subs[cancelling])
    with engine.db.transaction() as session:
        session.get(Customer, with_balance).balance = 1000

    tick(engine.ctx, RENEWAL)

    assert one_by_one == []
    assert engine.charged(plain) == [3000, 3000]
    assert engine.charged(downgrading)[-1] == 900
    assert engine.sub(subs[downgrading]).plan == "basic"
    assert [(i.total, i.balance_applied, i.amount_paid) for i in engine.invoices(with_balance)][-1] == (
        3000, 1000, 2000)
    assert engine.charged(quarterly) == [7650]
    assert engine.sub(subs[quarterly]).credit_period_start == RENEWAL
    assert engine.sub(subs[cancelling]).status == "ended"
    assert engine.charged(cancelling) == [3000]
    for cus in (plain, downgrading, with_balance):
        assert engine.sub(subs[cus]).current_term_end == NEXT
        assert engine.event_count("subscription.renewed", cus) == 1
