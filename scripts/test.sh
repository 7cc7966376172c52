#!/usr/bin/env bash
# Set everything up and run every test (unit, integration on SQLite and PostgreSQL, API,
# browser, scenarios, and each benchmark once at a tiny size).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-browser.sh
.venv/bin/python -m pytest -q "$@"
