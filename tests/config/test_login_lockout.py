"""Password guessing: after LOGIN_FAILURE_LIMIT failures the login page and the admin's
login refuse even the right password, say why on the page, and let go after the pause."""

import json
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.db.models import F
from django.test import AsyncClient

from tests.config.test_settings import run
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed login attempts"


@pytest.fixture
def limits(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    return settings


def attempts():
    from axes.models import AccessAttempt  # django-axes' record of failures

    return AccessAttempt.objects


def log_in(client, username, password, url="/accounts/login/", **extra):
    return client.post(url, {"username": username, "password": password, "next": "/"}, **extra)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_right_password_is_refused_once_the_limit_is_reached(client, limits):
    user = UserFactory(roles=["cashier"])
    for _ in range(2):
        wrong = log_in(client, user.username, "guess")
        assert wrong.status_code == 200
        assert LOCKED not in wrong.content.decode()
    locking = log_in(client, user.username, "guess")
    assert locking.status_code == 429

    right = log_in(client, user.username, PASSWORD)

    assert right.status_code == 429 and not logged_in(client)
    page = right.content.decode()
    assert right.templates[0].name == "registration/login.html"
    assert 'id="lockout"' in page and LOCKED in page
    assert "paused for 15 minutes after the last failed attempt" in page
    assert 'name="password"' in page  # the form is still there, to try again later
    assert "Please enter a correct username" not in page


def test_a_locked_page_speaks_the_visitors_language(client, limits):
    user = UserFactory()
    for _ in range(3):
        log_in(client, user.username, "guess")
    page = log_in(client, user.username, PASSWORD, HTTP_ACCEPT_LANGUAGE="pt-br")
    assert page.status_code == 429
    assert '<html lang="pt-br">' in page.content.decode()


def test_the_lock_is_one_account_from_one_address(client, limits):
    user, colleague = UserFactory(), UserFactory()
    for _ in range(3):
        log_in(client, user.username, "guess")
    # A colleague behind the same address, and the owner from elsewhere, still log in.
    assert log_in(client, colleague.username, PASSWORD).status_code == 302
    client.logout()
    assert log_in(client, user.username, PASSWORD, REMOTE_ADDR="203.0.113.9").status_code == 302


def test_a_success_before_the_limit_starts_the_count_again(client, limits):
    user = UserFactory()
    for _ in range(2):
        log_in(client, user.username, "guess")
    assert log_in(client, user.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        assert log_in(client, user.username, "guess").status_code == 200
    assert log_in(client, user.username, PASSWORD).status_code == 302


def test_the_pause_ends_cooloff_after_the_last_failure(client, limits):
    user = UserFactory()
    for _ in range(3):
        log_in(client, user.username, "guess")
    # Tries while locked neither count nor move the end of the pause.
    assert log_in(client, user.username, "guess").status_code == 429
    assert attempts().get().failures_since_start == 3

    attempts().update(attempt_time=F("attempt_time") - timedelta(minutes=14))
    assert log_in(client, user.username, PASSWORD).status_code == 429
    attempts().update(attempt_time=F("attempt_time") - timedelta(minutes=2))
    assert log_in(client, user.username, PASSWORD).status_code == 302
    assert logged_in(client)


def test_without_a_cooloff_staff_lift_the_lock(client, limits):
    limits.AXES_COOLOFF_TIME = None
    user = UserFactory()
    for _ in range(3):
        log_in(client, user.username, "guess")
    attempts().update(attempt_time=F("attempt_time") - timedelta(days=30))
    page = log_in(client, user.username, PASSWORD)
    assert page.status_code == 429
    assert "blocked until a staff member lifts the block" in page.content.decode()

    call_command("axes_reset_username", user.username)

    assert log_in(client, user.username, PASSWORD).status_code == 302


def test_the_admin_login_locks_too_and_shares_the_count(client, limits):
    staff = UserFactory(roles=["staff"], is_staff=True)
    log_in(client, staff.username, "guess")
    log_in(client, staff.username, "guess")
    admin_login = "/admin/login/?next=/admin/"
    locking = log_in(client, staff.username, "guess", url=admin_login)
    assert locking.status_code == 429

    right = log_in(client, staff.username, PASSWORD, url=admin_login)

    assert right.status_code == 429 and not logged_in(client)
    assert LOCKED in right.content.decode()
    assert client.get("/admin/").status_code == 302  # still to the login


def test_the_lockout_page_under_asgi(limits):
    """Under daphne axes takes its asynchronous path, which hands over no response."""
    user = UserFactory()
    client = AsyncClient()
    for _ in range(3):
        async_to_sync(client.post)(
            "/accounts/login/", {"username": user.username, "password": "guess"}
        )
    right = async_to_sync(client.post)(
        "/accounts/login/", {"username": user.username, "password": PASSWORD}
    )
    assert right.status_code == 429
    assert LOCKED in right.content.decode()


# --- settings from the environment -------------------------------------------------------

PRINT_LIMITS = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'limit': s.AXES_FAILURE_LIMIT, "
    "'cooloff': s.AXES_COOLOFF_TIME and s.AXES_COOLOFF_TIME.total_seconds(), "
    "'by': s.AXES_LOCKOUT_PARAMETERS, 'rates': s.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'], "
    "'proxies': s.REST_FRAMEWORK['NUM_PROXIES'], 'cache': s.CACHES['default']}))"
)


def test_limits_come_from_the_environment():
    done = run(
        PRINT_LIMITS,
        {
            "DEBUG": "true",
            "LOGIN_FAILURE_LIMIT": "7",
            "LOGIN_COOLOFF_MINUTES": "30",
            "LOGIN_LOCKOUT_BY": "username,ip_address+user_agent",
            "THROTTLE_PAYMENT_SESSION_CREATE": "3/hour",
            "THROTTLE_PROOF_UPLOAD": "",
            "TRUSTED_PROXY_COUNT": "1",
            "REDIS_URL": "redis://cache.invalid:6379/0",
            "CHANNELS_PREFIX": "shop-a",
        },
        python_code=True,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["limit"] == 7 and data["cooloff"] == 1800
    assert data["by"] == ["username", ["ip_address", "user_agent"]]
    assert data["rates"] == {
        "payment_session_create": "3/hour",
        "proof_upload": None,
        "kiosk_ticket": "30/min",
    }
    assert data["proxies"] == 1
    assert data["cache"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert data["cache"]["KEY_PREFIX"] == "shop-a"


def test_defaults_and_a_misspelt_rate():
    defaults = run(PRINT_LIMITS, {"DEBUG": "true"}, python_code=True)
    assert defaults.returncode == 0, defaults.stderr
    data = json.loads(defaults.stdout)
    assert (data["limit"], data["cooloff"]) == (5, 900)
    assert data["by"] == [["username", "ip_address"]]
    assert data["rates"] == {
        "payment_session_create": "10/min",
        "proof_upload": "20/min",
        "kiosk_ticket": "30/min",
    }
    assert data["cache"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"

    wrong = run(
        PRINT_LIMITS, {"DEBUG": "true", "THROTTLE_PROOF_UPLOAD": "20 a minute"}, python_code=True
    )
    assert wrong.returncode != 0
    assert "THROTTLE_PROOF_UPLOAD must be like 10/min" in wrong.stderr
