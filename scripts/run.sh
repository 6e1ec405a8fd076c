#!/usr/bin/env bash
# Start Confirma: migrate, demo data, then daphne + the task worker + the periodic jobs +
# the fake Mercado Pago API. Stops everything on Ctrl+C. Called by `make run`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
FAKE_MP_PORT=${FAKE_MP_PORT:-8010}

# Demo-only provider secrets: random, kept in var/ (never committed) so they survive restarts.
mkdir -p var
if [ ! -f var/demo-secrets.env ]; then
  "$PY" - > var/demo-secrets.env <<'PYEOF'
import base64, secrets
print(f"MERCADOPAGO_ACCESS_TOKEN=TEST-demo-{secrets.token_hex(16)}")
print(f"MERCADOPAGO_WEBHOOK_SECRET={secrets.token_hex(24)}")
print(f"KIOSK_WEBHOOK_SECRET=whsec_{base64.b64encode(secrets.token_bytes(24)).decode()}")
PYEOF
  chmod 600 var/demo-secrets.env
fi
set -a
# shellcheck disable=SC1091
. var/demo-secrets.env
FAKE_PROVIDERS=true
MERCADOPAGO_API_BASE=${MERCADOPAGO_API_BASE:-http://127.0.0.1:$FAKE_MP_PORT}
PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://$HOST:$PORT}
set +a

"$PY" manage.py migrate --no-input -v0
"$PY" manage.py demo_data

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

"$PY" manage.py fake_mercadopago --port "$FAKE_MP_PORT" &
pids+=($!)
"$PY" manage.py db_worker --no-reload --interval 0.5 -v0 &
pids+=($!)
"$PY" manage.py run_periodic &
pids+=($!)
"$PY" -m daphne -b "$HOST" -p "$PORT" config.asgi:application &
pids+=($!)

echo
echo "Confirma is running at http://$HOST:$PORT/  (Ctrl+C stops it)"
echo "Log in with any demo user above; the admin is at http://$HOST:$PORT/admin/"
echo "Payments go to a local fake Mercado Pago; use \"Simulate payment\" on a payment page."
wait -n "${pids[@]}"
