"""An answered spend survives the server's death: SIGKILL right after the 200, restart, and
every acknowledged spend is in the ledger (SQLite: WAL with synchronous=FULL; PostgreSQL:
the commit returns before the answer is sent)."""

from __future__ import annotations

import signal

from fault_kit import Server, check_invariants, setup_subscribed

SPENDS = 15


def test_answered_spends_survive_sigkill(db, tmp_path):
    _, customer_id, _ = setup_subscribed(db)
    server = Server(db.url, tmp_path)
    answered = []
    for n in range(SPENDS):
        body = {"amount": "1.5", "feature": "standard_models", "reference": f"job_{n}"}
        response = server.call("POST", f"/v1/customers/{customer_id}/credits/spend", body)
        assert response.status_code == 200, response.text
        answered.append(response.json())
    server.process.send_signal(signal.SIGKILL)  # no shutdown: nothing gets flushed on the way out
    assert server.process.wait(timeout=30) == -signal.SIGKILL

    restarted = Server(db.url, tmp_path)
    try:
        entries = restarted.ok("GET", f"/v1/customers/{customer_id}/credits/ledger?limit=100")["data"]
        spent = sorted(entry["reference"] for entry in entries if entry["kind"] == "spend")
        assert spent == sorted(f"job_{n}" for n in range(SPENDS))
        # A repeat returns the first answer and spends nothing more: the spend is really there.
        again = restarted.ok("POST", f"/v1/customers/{customer_id}/credits/spend",
                             {"amount": "1.5", "feature": "standard_models", "reference": f"job_{SPENDS - 1}"})
        assert again["balance"] == answered[-1]["balance"]
    finally:
        restarted.stop()
    check_invariants(db.url, tmp_path)
