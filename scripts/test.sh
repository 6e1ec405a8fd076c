#!/usr/bin/env bash
# Run the whole test suite: ruff, the import layers (lint-imports), then pytest. Called by `make test`.
# Uses DATABASE_URL / REDIS_URL when set (CI points them at PostgreSQL and Redis); otherwise
# scripts/testenv.py finds the local PostgreSQL and Redis, or starts throwaway ones.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export CONFIRMA_TESTING=true

# The browser tests drive Debian's Chromium; install it when it is missing and we can.
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ] && [ -z "${CHROMIUM_PATH:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Chromium…"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; then
      echo "Could not install Chromium; the browser tests are skipped (and fail with CI=true)." >&2
    fi
  else
    echo "Chromium is not installed: install Debian's chromium package (or set CHROMIUM_PATH);" \
      "the browser tests are skipped without it, and fail with CI=true." >&2
  fi
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Every import points down the layers declared in pyproject.toml, and none goes round.
.venv/bin/lint-imports --no-cache
"$PY" manage.py makemigrations --check --dry-run -v0
# Two processes (pytest-xdist; TEST_WORKERS=0 runs in one): the browser and the fault tests
# each stay in one process (tests/conftest.py), the rest is shared out test by test.
exec "$PY" scripts/testenv.py -- "$PY" -m pytest -n "${TEST_WORKERS:-2}" --dist loadgroup "$@"
