"""The demo's fake providers are off unless explicitly on in development."""

import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from payments.errors import PaymentError
from payments.models import PaymentStatus
from payments.services import payment_session_create
from payments.services.simulation import payment_simulate
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_simulation_and_fake_server_refuse_when_fakes_are_off(settings, mp_fake):
    settings.FAKE_PROVIDERS = False
    session = payment_session_create(
        user=UserFactory(),
        purpose="wallet_topup",
        provider="mercadopago",
        amount=Decimal("5.00"),
        idempotency_key=uuid.uuid4().hex,
    ).session
    with pytest.raises(PaymentError, match="off"):
        payment_simulate(session=session, action="approve")
    with pytest.raises(CommandError):
        call_command("fake_mercadopago", "--port", "0")


@pytest.mark.django_db
def test_simulate_page_requires_the_owner(client, settings, mp_fake):
    settings.FAKE_PROVIDERS = True
    owner = UserFactory()
    session = payment_session_create(
        user=owner,
        purpose="wallet_topup",
        provider="mercadopago",
        amount=Decimal("5.00"),
        idempotency_key=uuid.uuid4().hex,
    ).session
    client.force_login(UserFactory())
    url = f"/payments/{session.reference}/simulate/"
    assert client.post(url, {"action": "approve"}).status_code == 404
    assert client.get(f"/payments/{session.reference}/").status_code == 404
    client.force_login(owner)
    assert client.get(f"/payments/{session.reference}/").status_code == 200
    client.post(url, {"action": "approve"})
    assert mp_fake.payments[session.provider_payment_id]["status"] == "approved"
    session.refresh_from_db()
    assert session.status == PaymentStatus.PENDING  # only the webhook may confirm it


@pytest.mark.django_db
def test_demo_data_adds_coupons_and_credit(settings):
    from payments.models import Coupon
    from payments.services import wallet_account_get

    settings.DEBUG = True
    call_command("demo_data")
    call_command("demo_data")
    assert set(Coupon.objects.values_list("code", flat=True)) == {"DEMO10", "FIVEOFF"}
    from django.contrib.auth import get_user_model

    customer = get_user_model().objects.get(username="customer")
    assert wallet_account_get(user=customer).balance == Decimal("20.00")


def test_fake_server_command_stops_on_sigterm():
    """The one-command run stops its processes with SIGTERM; the fake must not hang."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.e2e.stack import free_port

    port = free_port()
    env = dict(
        os.environ,
        DEBUG="true",
        FAKE_PROVIDERS="true",
        MERCADOPAGO_ACCESS_TOKEN="TEST-sigterm",
        MERCADOPAGO_WEBHOOK_SECRET="s",
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "fake_mercadopago", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/checkout/pix/1", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()


# Starts Django as `manage.py` would, imports every module of the product and resolves the
# URLs, then reports what of the fake providers' app got loaded.
LAYOUT = """
import importlib, json, pkgutil, sys
import django
django.setup()
from django.apps import apps
from django.core.management import get_commands
from django.urls import get_resolver
from payments.services.simulation import simulator_get
get_resolver().url_patterns
for app in ("config", "notifications", "payments", "subscriptions", "tickets", "orders"):
    package = importlib.import_module(app)
    for module in pkgutil.walk_packages(package.__path__, app + "."):
        importlib.import_module(module.name)
print("LAYOUT=" + json.dumps({
    "installed": apps.is_installed("fakeproviders"),
    "loaded": any(name.split(".")[0] == "fakeproviders" for name in sys.modules),
    "commands": sorted(c for c in get_commands() if c.startswith("fake_")),
    "simulates": [p for p in ("mercadopago", "kiosk", "click") if simulator_get(p)],
}))
"""


@pytest.mark.parametrize(
    "profile, expected",
    [
        (
            {"SECRET_KEY": "prod-" + "k" * 50},
            {"installed": False, "loaded": False, "commands": [], "simulates": []},
        ),
        (
            {"DEBUG": "true"},
            {"installed": False, "loaded": False, "commands": [], "simulates": []},
        ),
        (
            {"DEBUG": "true", "FAKE_PROVIDERS": "true"},
            {
                "installed": True,
                "loaded": True,
                "commands": ["fake_billing", "fake_mercadopago"],
                "simulates": ["mercadopago", "kiosk"],
            },
        ),
    ],
    ids=["production", "development", "demo"],
)
def test_the_fake_providers_are_loaded_only_when_they_are_on(profile, expected):
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update(profile, DJANGO_SETTINGS_MODULE="config.settings")
    env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:1/nothing"  # never connected to
    done = subprocess.run(
        [sys.executable, "-c", LAYOUT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("LAYOUT=")), None)
    assert line, done.stderr[-3000:]
    assert json.loads(line.removeprefix("LAYOUT=")) == expected
