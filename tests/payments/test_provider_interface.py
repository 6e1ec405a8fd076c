"""Every provider that sends webhooks is an adapter behind the one interface, and no code
outside the adapters branches on which provider it is."""

import re
from pathlib import Path

import pytest

from payments.models import Provider
from payments.providers import provider_get, providers_all
from payments.providers.base import ProviderAdapter

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_APPS = ("core", "config", "payments", "notifications", "subscriptions", "tickets", "orders")
NAMES = "|".join(p.value for p in Provider)
# `x == Provider.CLICK`, `"click" != x`, `x in (Provider.WALLET, …)` and the like.
BRANCH = re.compile(
    rf"(==|!=)\s*(Provider\.[A-Z_]+|[\"']({NAMES})[\"'])"
    rf"|(Provider\.[A-Z_]+|[\"']({NAMES})[\"'])\s*(==|!=)"
    rf"|\bin\s*[\(\[\{{]\s*(Provider\.[A-Z_]+|[\"']({NAMES})[\"'])"
)


@pytest.mark.parametrize(
    "name", [p.value for p in Provider if p != Provider.MANUAL_PROOF]
)  # a cashier's check of a receipt has no provider messages
def test_each_provider_is_a_registered_adapter(name):
    adapter = provider_get(name)
    assert isinstance(adapter, ProviderAdapter)
    assert adapter.name == name
    assert not getattr(adapter.verify, "__isabstractmethod__", False)
    assert not getattr(adapter.parse, "__isabstractmethod__", False)
    assert {a.name for a in providers_all()} >= {name}


def test_no_code_outside_the_adapters_branches_on_the_provider():
    found = []
    for app in PRODUCT_APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or relative.startswith("payments/providers/"):
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if BRANCH.search(line.split("#", 1)[0]):
                    found.append(f"{relative}:{number}: {line.strip()}")
    assert found == []


def test_the_scan_sees_a_branch_on_the_provider():
    assert BRANCH.search("if session.provider == Provider.WALLET:")
    assert BRANCH.search("if provider == 'click':")
    assert BRANCH.search("if delivery.provider in (Provider.CLICK, Provider.KIOSK):")
    assert not BRANCH.search("providers = (Provider.MERCADOPAGO, Provider.KIOSK)")
