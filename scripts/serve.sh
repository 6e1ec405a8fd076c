#!/usr/bin/env bash
# Confirma's production process layout (see docs/performance.md):
#   - gunicorn (gthread workers, config/gunicorn.conf.py) for HTTP: pages, API, webhooks;
#   - several daphne processes for WebSockets (/ws/events/), one port each;
#   - process_webhooks workers that confirm the stored webhook deliveries in batches;
#   - db_worker processes for background tasks (printing, alerts);
#   - run_periodic for the periodic jobs (or use the cron lines in the README instead).
# A reverse proxy sends /ws/ to the daphne ports and everything else to gunicorn.
# Runs in the foreground; SIGTERM or Ctrl+C stops every process, and if one of them dies
# the others are stopped too, so a supervisor (systemd, a container runtime) restarts all.
#
# Needs DATABASE_URL (PostgreSQL), REDIS_URL, SECRET_KEY and ALLOWED_HOSTS; sets DEBUG=false
# and runs `manage.py check --deploy` first (errors stop it). /healthz gives its details to
# HEALTH_TOKEN holders (monitoring) and staff only. Optional:
#   BIND_HOST         address the processes listen on (default 127.0.0.1, behind the proxy)
#   HTTP_PORT         gunicorn's port (default 8000)
#   WS_PORT           first daphne port (default 8001; daphne N listens on WS_PORT+N-1)
#   DAPHNE_PROCESSES  daphne processes (default: one per core)
#   WEB_CONCURRENCY, GUNICORN_THREADS   gunicorn workers and threads per worker
#   WEBHOOK_WORKERS   process_webhooks workers (default 2)
#   WEBHOOK_WORKER_NICE  their niceness (default 10): when the node is short of CPU the
#                     webhook requests are answered first and confirming waits a little
#   WORKER_PROCESSES  db_worker processes (default 1)
#   WORKER_NICE       their niceness (default 10): background tasks (printing, alerts) give
#                     way to the webhook requests and the live screens when CPU is short
#   WORKER_INTERVAL   seconds an idle worker waits before looking for tasks (default 0.2)
#   RUN_PERIODIC      "false" when cron runs the periodic jobs (default true)
#   SKIP_PREPARE      "true" to skip compile_translations + collectstatic at start
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi

fail() { echo "serve.sh: $*" >&2; exit 2; }
case "${DATABASE_URL:-}" in
  postgres://* | postgresql://* | pgsql://*) ;;
  "") fail "DATABASE_URL is not set: production needs PostgreSQL (postgres://…)." ;;
  *) fail "DATABASE_URL must point at PostgreSQL (postgres://…), not ${DATABASE_URL%%:*}." ;;
esac
case "${REDIS_URL:-}" in
  redis://* | rediss://* | unix://*) ;;
  "") fail "REDIS_URL is not set: production needs Redis for the channel layer." ;;
  *) fail "REDIS_URL must be a redis:// URL." ;;
esac
[ -n "${SECRET_KEY:-}" ] || fail "SECRET_KEY is not set."
[ -n "${ALLOWED_HOSTS:-}" ] || fail "ALLOWED_HOSTS is not set (e.g. confirma.example.com)."

export DEBUG=false
BIND_HOST=${BIND_HOST:-127.0.0.1}
HTTP_PORT=${HTTP_PORT:-8000}
WS_PORT=${WS_PORT:-8001}
CORES=$(nproc 2>/dev/null || echo 2)
DAPHNE_PROCESSES=${DAPHNE_PROCESSES:-$CORES}
WORKER_PROCESSES=${WORKER_PROCESSES:-1}
WEBHOOK_WORKERS=${WEBHOOK_WORKERS:-2}
WEBHOOK_WORKER_NICE=${WEBHOOK_WORKER_NICE:-10}
WORKER_NICE=${WORKER_NICE:-10}
WORKER_INTERVAL=${WORKER_INTERVAL:-0.2}
RUN_PERIODIC=${RUN_PERIODIC:-true}

# The schema must be current: migrations are a deploy step, run once, not per process.
if ! "$PY" manage.py migrate --check -v0 >/dev/null 2>&1; then
  fail "the database has unapplied migrations (or cannot be reached): run 'python manage.py migrate' first."
fi
# Django's and Confirma's deployment checks (config/checks.py): errors stop here, warnings
# are printed and the layout starts (silence an accepted one with SILENCED_SYSTEM_CHECKS).
"$PY" manage.py check --deploy || fail "the deployment checks found errors (listed above)."
if [ "${SKIP_PREPARE:-false}" != "true" ]; then
  "$PY" manage.py compile_translations >/dev/null
  "$PY" manage.py collectstatic --no-input -v0
fi

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

GUNICORN_BIND="$BIND_HOST:$HTTP_PORT" "$PY" -m gunicorn -c config/gunicorn.conf.py &
pids+=($!)
for ((i = 0; i < DAPHNE_PROCESSES; i++)); do
  "$PY" -m daphne --proxy-headers -b "$BIND_HOST" -p $((WS_PORT + i)) config.asgi:application &
  pids+=($!)
done
for ((i = 0; i < WEBHOOK_WORKERS; i++)); do
  nice -n "$WEBHOOK_WORKER_NICE" "$PY" manage.py process_webhooks -v0 &
  pids+=($!)
done
for ((i = 0; i < WORKER_PROCESSES; i++)); do
  nice -n "$WORKER_NICE" "$PY" manage.py db_worker --no-reload --interval "$WORKER_INTERVAL" -v0 &
  pids+=($!)
done
if [ "$RUN_PERIODIC" = "true" ]; then
  "$PY" manage.py run_periodic &
  pids+=($!)
fi

echo "serve.sh: HTTP on $BIND_HOST:$HTTP_PORT (gunicorn), WebSockets on" \
  "$BIND_HOST:$WS_PORT..$((WS_PORT + DAPHNE_PROCESSES - 1)) (daphne ×$DAPHNE_PROCESSES)," \
  "$WEBHOOK_WORKERS webhook worker(s), $WORKER_PROCESSES task worker(s)"
set +e
wait -n "${pids[@]}"
status=$?
echo "serve.sh: a process exited (status $status); stopping the others" >&2
exit $((status == 0 ? 1 : status))
