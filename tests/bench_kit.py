"""Running a benchmark of bench/ at its tiny size, as the test command does for each one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_tiny(script: str, out: Path, *more: str, timeout: int = 600) -> dict:
    """Run `bench/<script> --tiny --out <out> <more>` in a new process; its JSON report. The run
    must exit 0 (its output is shown otherwise)."""
    run = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--tiny", "--out", str(out), *more],
                         cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(out.read_text())
