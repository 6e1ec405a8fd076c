#!/usr/bin/env bash
# Start Confirma: migrate, demo data, then daphne + the task worker + the periodic jobs.
# Stops everything on Ctrl+C. Called by `make run`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

"$PY" manage.py migrate --no-input -v0
"$PY" manage.py demo_data

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

"$PY" manage.py db_worker --no-reload --interval 0.5 -v0 &
pids+=($!)
"$PY" manage.py run_periodic &
pids+=($!)
"$PY" -m daphne -b "$HOST" -p "$PORT" config.asgi:application &
pids+=($!)

echo
echo "Confirma is running at http://$HOST:$PORT/  (Ctrl+C stops it)"
echo "Log in with any demo user above; the admin is at http://$HOST:$PORT/admin/"
wait -n "${pids[@]}"
