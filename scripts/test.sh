#!/usr/bin/env bash
# One command: set up and run the whole test suite, with the linters and the type checker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh dev
# The 1.x SDK (x-api-key, /v1/messages?beta=true) is tested from its own directory, so both
# generations run against the gateway in one suite.
if [ ! -f .venv-sdk1/anthropic/__init__.py ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    --no-deps --target .venv-sdk1 "anthropic==1.17.0"
fi
# The dashboard's browser test drives Debian's chromium through chromedriver (nothing downloaded).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver
fi
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
BASTION_REQUIRE_BROWSER=1 .venv/bin/pytest -q -p no:cacheprovider "$@"
