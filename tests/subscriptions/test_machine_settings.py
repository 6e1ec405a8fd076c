"""MACHINE_RESERVATION_MINUTES is read once, at start, and must be at least one minute: the
hold is also what keeps a customer to one PIX purchase while its payment is created."""

import json

import pytest

from tests.config.test_settings import run

PRINT_HOLD = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.MACHINE_RESERVATION_MINUTES)"
)


def test_the_hold_comes_from_the_environment():
    default = run(PRINT_HOLD, {"DEBUG": "true"}, python_code=True)
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout) == 5
    chosen = run(
        PRINT_HOLD, {"DEBUG": "true", "MACHINE_RESERVATION_MINUTES": "1"}, python_code=True
    )
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout) == 1


@pytest.mark.parametrize("minutes", ["0", "-3"])
def test_no_hold_is_refused_at_start(minutes):
    done = run(
        PRINT_HOLD, {"DEBUG": "true", "MACHINE_RESERVATION_MINUTES": minutes}, python_code=True
    )
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert f"MACHINE_RESERVATION_MINUTES must be 1 minute or more: {minutes}" in done.stderr
