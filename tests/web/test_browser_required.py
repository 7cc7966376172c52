"""CI makes the browser tests mandatory: without Chromium they fail there instead of skipping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
A_BROWSER_TEST = "tests/web/test_billing_page.py::test_the_page_shows_plan_credits_and_a_card_for_every_plan_and_term"


def _run_without_chromium(**env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "CREDITFLOW_REQUIRE_BROWSER"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", A_BROWSER_TEST],
                          cwd=ROOT, env=environ | {"CREDITFLOW_CHROMIUM": "/nonexistent/chromium"} | env,
                          capture_output=True, text=True, timeout=300)


def test_without_chromium_browser_tests_fail_when_required_and_skip_otherwise():
    required = _run_without_chromium(CREDITFLOW_REQUIRE_BROWSER="1")
    assert required.returncode != 0
    assert "no Chromium at /nonexistent/chromium" in required.stdout and "1 error" in required.stdout

    optional = _run_without_chromium()
    assert optional.returncode == 0 and "1 skipped" in optional.stdout, optional.stdout
