#!/usr/bin/env bash
# Set everything up and run every test (unit, integration on SQLite and PostgreSQL, API,
# browser, scenarios, and each benchmark once at a tiny size).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-browser.sh
# Tests run in parallel processes (pytest-xdist), one per core by default: most of them wait on
# servers, browsers and databases, so two processes on two cores take well under half the
# time of one. CREDITFLOW_TEST_PROCESSES=0 runs them in this process, in order.
.venv/bin/python -m pytest -q -n "${CREDITFLOW_TEST_PROCESSES:-auto}" "$@"
