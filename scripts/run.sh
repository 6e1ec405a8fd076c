#!/usr/bin/env bash
# Start Confirma: migrate, demo data, then daphne + the webhook worker + the task worker +
# the periodic jobs + the fake provider APIs. Stops everything on Ctrl+C. Called by `make run`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
FAKE_MP_PORT=${FAKE_MP_PORT:-8010}
FAKE_BILLING_PORT=${FAKE_BILLING_PORT:-8011}

# Demo-only provider secrets: random, kept in var/ (never committed) so they survive restarts;
# missing ones are added to an existing file.
mkdir -p var
touch var/demo-secrets.env
chmod 600 var/demo-secrets.env
"$PY" - var/demo-secrets.env <<'PYEOF'
import base64, secrets, sys
path = sys.argv[1]
have = {line.split("=", 1)[0] for line in open(path) if "=" in line}
wanted = {
    "MERCADOPAGO_ACCESS_TOKEN": f"TEST-demo-{secrets.token_hex(16)}",
    "MERCADOPAGO_WEBHOOK_SECRET": secrets.token_hex(24),
    "KIOSK_WEBHOOK_SECRET": f"whsec_{base64.b64encode(secrets.token_bytes(24)).decode()}",
    "CLICK_SERVICE_ID": str(20000 + secrets.randbelow(10000)),
    "CLICK_MERCHANT_ID": str(10000 + secrets.randbelow(10000)),
    "CLICK_SECRET_KEY": secrets.token_urlsafe(18),
    "NOWPAYMENTS_API_KEY": secrets.token_hex(16).upper(),
    "NOWPAYMENTS_IPN_SECRET": secrets.token_urlsafe(24),
    "COINBASE_COMMERCE_API_KEY": secrets.token_hex(16),
    "COINBASE_COMMERCE_WEBHOOK_SECRET": secrets.token_hex(24),
}
with open(path, "a") as out:
    for name, value in wanted.items():
        if name not in have:
            out.write(f"{name}={value}\n")
PYEOF
set -a
# shellcheck disable=SC1091
. var/demo-secrets.env
# The demo is the local profile: DEBUG on (it is off unless set), fake providers.
DEBUG=true
FAKE_PROVIDERS=true
MERCADOPAGO_API_BASE=${MERCADOPAGO_API_BASE:-http://127.0.0.1:$FAKE_MP_PORT}
CLICK_PAY_URL=${CLICK_PAY_URL:-http://127.0.0.1:$FAKE_BILLING_PORT/click/services/pay}
NOWPAYMENTS_API_BASE=${NOWPAYMENTS_API_BASE:-http://127.0.0.1:$FAKE_BILLING_PORT/nowpayments}
COINBASE_COMMERCE_API_BASE=${COINBASE_COMMERCE_API_BASE:-http://127.0.0.1:$FAKE_BILLING_PORT/coinbase}
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
"$PY" manage.py fake_billing --port "$FAKE_BILLING_PORT" &
pids+=($!)
"$PY" manage.py process_webhooks -v0 &
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
echo "Payments go to local fakes of Mercado Pago, Click, NOWPayments and Coinbase Commerce;"
echo "use \"Simulate payment\" on a PIX payment page, or \"Pay\" on a fake provider's page."
wait -n "${pids[@]}"
