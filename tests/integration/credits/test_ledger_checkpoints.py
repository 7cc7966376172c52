"""The incremental ledger check: a clean check leaves a checkpoint (the sums of every entry up to
the last one it verified), and the next one checks only the customers with entries since,
against those sums. On SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading

from sqlalchemy import text

from creditflow.credits.check import ENTRY_SUMS, LOT_SUMS, run_ledger_check
from creditflow.credits.holds import hold_credits, release_hold, settle_hold
from creditflow.credits.promo import grant_promo_credits
from creditflow.credits.spend import refund_spend, spend_credits
from creditflow.kit.errors import InsufficientCredits

from .credit_kit import new_customer


def _fund(ctx, customer_id: str, amount: str = "1000") -> None:
    grant_promo_credits(ctx, customer_id, amount=amount, reason="test credits")


def _spend(ctx, customer_id: str, amount: str, reference: str):
    return spend_credits(ctx, customer_id, amount=amount, feature="standard_models", reference=reference)


def _sums_from_scratch(db, through: int) -> tuple[dict, dict]:
    """Every customer's and lot's sums over entries up to `through`, added up afresh."""
    with db.transaction(readonly=True) as session:
        accounts = {row[0]: tuple(int(v) for v in row[1:]) for row in session.execute(text(
            f"SELECT customer_id, {ENTRY_SUMS} FROM credit_entries WHERE seq <= :t GROUP BY customer_id"),
            {"t": through})}
        lots = {row[0]: tuple(int(v) for v in row[1:]) for row in session.execute(text(
            f"SELECT lot_id, {LOT_SUMS} FROM credit_entries WHERE seq <= :t AND lot_id IS NOT NULL "
            "GROUP BY lot_id"), {"t": through})}
    return accounts, lots


def _checkpoint(db) -> tuple[int, int, dict, dict]:
    with db.transaction(readonly=True) as session:
        through, entries = session.execute(text(
            "SELECT through_seq, entries FROM ledger_checkpoints WHERE id = 1")).one()
        accounts = {row[0]: tuple(int(v) for v in row[1:]) for row in session.execute(text(
            "SELECT customer_id, granted, spent, expired, held, available FROM ledger_checkpoint_accounts"))}
        lots = {row[0]: tuple(int(v) for v in row[1:]) for row in session.execute(text(
            "SELECT lot_id, granted, remaining FROM ledger_checkpoint_lots"))}
    return through, entries, accounts, lots


def _assert_checkpoint_is_the_ledger_up_to_it(db) -> int:
    through, entries, accounts, lots = _checkpoint(db)
    expected_accounts, expected_lots = _sums_from_scratch(db, through)
    assert accounts == expected_accounts
    assert lots == expected_lots
    with db.transaction(readonly=True) as session:
        assert entries == session.execute(
            text("SELECT COUNT(*) FROM credit_entries WHERE seq <= :t"), {"t": through}).scalar_one()
    return through


def test_the_first_check_is_full_and_the_next_looks_only_at_what_changed(ctx):
    alice, bob, carol = (new_customer(ctx) for _ in range(3))
    for customer in (alice, bob, carol):
        _fund(ctx, customer)
        _spend(ctx, customer, "10", "first")

    first = run_ledger_check(ctx.db)
    assert first.report.since is None and first.report.problems == [] and first.saved
    assert first.report.customers == 3
    through = _assert_checkpoint_is_the_ledger_up_to_it(ctx.db)
    assert through == first.through

    _spend(ctx, bob, "2.5", "second")
    second = run_ledger_check(ctx.db)
    assert second.report.since == through
    assert (second.report.customers, second.report.entries) == (1, 1)  # bob, one spend entry
    assert second.report.problems == [] and second.saved and second.through == through + 1
    _assert_checkpoint_is_the_ledger_up_to_it(ctx.db)

    nothing_new = run_ledger_check(ctx.db)
    assert (nothing_new.report.customers, nothing_new.report.entries) == (0, 0)
    assert nothing_new.saved and nothing_new.through == second.through

    full = run_ledger_check(ctx.db, full=True)
    assert full.report.since is None and full.report.customers == 3 and full.report.problems == []
    _assert_checkpoint_is_the_ledger_up_to_it(ctx.db)


def test_every_kind_of_entry_keeps_the_checkpoint_equal_to_the_ledger(ctx):
    rng = random.Random(7)
    customers = [new_customer(ctx) for _ in range(4)]
    for customer in customers:
        _fund(ctx, customer, "200")
    run_ledger_check(ctx.db)
    holds, spends = [], []
    for step in range(60):
        customer = rng.choice(customers)
        move = rng.choice(("spend", "hold", "settle", "release", "refund", "grant"))
        try:
            if move == "spend":
                spends.append((customer, _spend(ctx, customer, f"{rng.randint(1, 9000) / 1000}", f"s{step}").reference))
            elif move == "hold":
                holds.append(hold_credits(ctx, customer, amount="3", feature="standard_models", reference=f"h{step}").id)
            elif move == "settle" and holds:
                settle_hold(ctx, holds.pop(rng.randrange(len(holds))), amount="1.25")
            elif move == "release" and holds:
                release_hold(ctx, holds.pop(rng.randrange(len(holds))))
            elif move == "refund" and spends:
                owner, reference = spends.pop(rng.randrange(len(spends)))
                refund_spend(ctx, owner, reference=reference)
            elif move == "grant":
                _fund(ctx, customer, "5")
        except InsufficientCredits:
            pass
        if step % 7 == 0:
            check = run_ledger_check(ctx.db)
            assert check.report.problems == [] and check.saved
            _assert_checkpoint_is_the_ledger_up_to_it(ctx.db)
    assert run_ledger_check(ctx.db, full=True).report.problems == []


def test_a_touched_account_that_disagrees_with_its_entries_fails_the_incremental_check(ctx):
    alice, bob = new_customer(ctx), new_customer(ctx)
    _fund(ctx, alice)
    _fund(ctx, bob)
    run_ledger_check(ctx.db)
    checkpoint = _checkpoint(ctx.db)[0]

    with ctx.db.transaction() as session:  # edited by hand: no ledger entry says so
        session.execute(text("UPDATE credit_accounts SET granted = granted + 1000, available = available + 1000 "
                             "WHERE customer_id IN (:a, :b)"), {"a": alice, "b": bob})
    _spend(ctx, alice, "1", "after-the-edit")

    check = run_ledger_check(ctx.db)
    assert check.report.customers == 1  # alice only: bob has no new entries
    assert any(p.startswith(f"{alice}: account totals disagree") for p in check.report.found["totals"])
    assert not any(bob in p for p in check.report.problems)
    assert not check.saved and _checkpoint(ctx.db)[0] == checkpoint  # a failed check moves nothing

    full = run_ledger_check(ctx.db, full=True)  # the full check finds both
    assert {p.split(":")[0] for p in full.report.found["totals"]} == {alice, bob}
    assert not full.saved


def test_the_full_check_goes_range_by_range_and_says_how_far_it_is(ctx):
    from creditflow.credits.check import ledger_report

    customers = [new_customer(ctx) for _ in range(5)]
    for customer in customers:
        _fund(ctx, customer, "3")
    with ctx.db.transaction() as session:  # the last customer's account is wrong
        session.execute(text("UPDATE credit_accounts SET spent = spent + 1 WHERE customer_id = :c"),
                        {"c": max(customers)})
    told = []
    with ctx.db.transaction(readonly=True) as session:
        report = ledger_report(session, accounts_per_range=2, progress=lambda done, total: told.append((done, total)))
    assert told == [(2, 5), (4, 5), (5, 5)]
    assert [p.split(":")[0] for p in report.found["conservation"]] == [max(customers)]


def test_checks_while_customers_spend_never_miss_an_entry(ctx):
    """Spends commit while checks run: each checkpoint must still be exactly the ledger up to its
    mark (on PostgreSQL, a spend holding a lower entry number may commit after a higher one)."""
    customers = [new_customer(ctx) for _ in range(4)]
    for customer in customers:
        _fund(ctx, customer, "100000")
    stop = threading.Event()
    errors: list = []

    def spender(i: int) -> None:
        n = 0
        try:
            while not stop.is_set():
                _spend(ctx, customers[i % len(customers)], "0.5", f"t{i}-{n}")
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=spender, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    try:
        for _ in range(8):
            check = run_ledger_check(ctx.db)
            assert check.report.problems == []
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    _assert_checkpoint_is_the_ledger_up_to_it(ctx.db)
    final = run_ledger_check(ctx.db)
    assert final.report.problems == [] and final.saved
    _assert_checkpoint_is_the_ledger_up_to_it(ctx.db)
    assert run_ledger_check(ctx.db, full=True).report.problems == []


def test_a_check_waits_for_an_entry_numbered_before_its_mark_but_not_yet_committed(pg_db):
    """PostgreSQL numbers an entry when it is written, not when it commits: a grant written first
    and committed last must be in the checkpoint that a check started between the two leaves."""
    from datetime import datetime, timezone

    from creditflow.credits.grants import grant_top_up
    from creditflow.kit.credits import Credits

    from .credit_kit import make_ctx

    ctx = make_ctx(pg_db)
    early, late = new_customer(ctx), new_customer(ctx)
    _fund(ctx, early)
    _fund(ctx, late)
    run_ledger_check(ctx.db)
    written, release = threading.Event(), threading.Event()

    def slow_grant() -> None:
        with ctx.db.transaction() as session:
            grant_top_up(ctx, session, customer_id=early, invoice_id="in_slow", credits=Credits.parse("7"),
                         now=datetime.now(timezone.utc))
            session.flush()
            written.set()
            release.wait(10)

    grant = threading.Thread(target=slow_grant)
    grant.start()
    assert written.wait(10)
    _spend(ctx, late, "1", "numbered-after-the-grant")  # committed with a higher entry number
    checks: list = []
    check = threading.Thread(target=lambda: checks.append(run_ledger_check(ctx.db)))
    check.start()
    check.join(1.0)
    assert check.is_alive()  # it waits for the open grant
    release.set()
    grant.join()
    check.join(10)
    (result,) = checks
    assert result.report.problems == [] and result.saved
    _assert_checkpoint_is_the_ledger_up_to_it(ctx.db)
    with ctx.db.transaction(readonly=True) as session:
        assert session.execute(text("SELECT granted FROM ledger_checkpoint_accounts WHERE customer_id = :c"),
                               {"c": early}).scalar_one() == 1007 * 1000
