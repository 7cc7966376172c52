"""One worker process for the multi-process race test (not a test module).

    python race_worker.py DATABASE_URL NOW_ISO OWNER BATCH

Prints `ready` once imported and connected, waits for `go` on stdin (so that every worker
starts at the same moment), runs `tick(ctx, NOW, owner=OWNER, batch=BATCH)` once, and prints
a JSON line: how many subscription steps this process ran.
"""

from __future__ import annotations

import json
import sys
import time

from creditflow.kit.clock import FixedClock, parse_instant
from creditflow.kit.db import Database
from creditflow.payment.sandbox import SandboxGateway
from creditflow.wiring import build_context
from creditflow.worker import runner


class NetworkGateway(SandboxGateway):
    """The sandbox behind a few milliseconds of network, as a real gateway is: the call is made
    outside any transaction, so while one worker waits on it the others can take their turn at
    SQLite's single write lock (without it one process can hold the lock back to back)."""

    def charge(self, request):
        time.sleep(0.005)
        return super().charge(request)


def main(url: str, now_iso: str, owner: str, batch: str) -> None:
    now = parse_instant(now_iso)
    database = Database(url)
    ctx = build_context(database, gateway=NetworkGateway(database), clock=FixedClock(now))
    with ctx.db.transaction(readonly=True) as session:  # connect before the start line
        session.connection()

    steps = 0
    renew_batch = runner.renew_batch

    def counting_renew_batch(*args, **kwargs):  # instrumentation only: count this process's work
        nonlocal steps
        ran = renew_batch(*args, **kwargs)
        steps += ran
        return ran

    runner.renew_batch = counting_renew_batch
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("no go")
    runner.tick(ctx, now, owner=owner, batch=int(batch))
    print(json.dumps({"owner": owner, "steps": steps}), flush=True)
    ctx.db.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:])
