#!/usr/bin/env bash
# Run the whole test suite: ruff, then pytest. Called by `make test`.
# Uses DATABASE_URL / REDIS_URL when set (CI points them at PostgreSQL and Redis).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export CONFIRMA_TESTING=true
.venv/bin/ruff check .
.venv/bin/ruff format --check .
"$PY" manage.py makemigrations --check --dry-run -v0
exec "$PY" -m pytest "$@"
