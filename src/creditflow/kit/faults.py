"""Named fault points: a test hook that kills this process at a chosen step.

The fault battery (tests/faults/) starts a real server or worker with
`CREDITFLOW_FAULT_POINT=<name>`; when the code reaches `fault_point(<name>)` the process
SIGKILLs itself, exactly as a power cut or an OOM kill would, with no cleanup, no rollback
handler and no flushed buffers. The battery then restarts the process without the variable
and checks that recovery charges once, grants once and settles every attempt.

The variable is read once, at import: without it a call is a comparison with None. Never set
it in production.
"""

from __future__ import annotations

import os
import signal

_ARMED: str | None = os.environ.get("CREDITFLOW_FAULT_POINT") or None

# The points placed in the purchase paths, for the battery to parametrise over.
POINTS = (
    "checkout.after_attempt_commit", "checkout.after_gateway", "checkout.before_outcome_commit",
    "checkout.after_outcome_commit",
    "renewal.after_attempt_commit", "renewal.after_gateway", "renewal.before_outcome_commit",
    "renewal.after_outcome_commit",
    "refund.after_attempt_commit", "refund.after_gateway", "refund.before_outcome_commit",
    "refund.after_outcome_commit",
)


def fault_point(name: str) -> None:
    """Die here (SIGKILL) if this is the armed fault point; otherwise do nothing."""
    if _ARMED is not None and _ARMED == name:
        os.kill(os.getpid(), signal.SIGKILL)
