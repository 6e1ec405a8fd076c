"""The looser login caps: one account from any address, and one address for any account,
refused once their failures within a window reach a limit; one account from one address
keeps its own tighter lock (tests/config/test_login_lockout.py)."""

import json
import logging
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from axes.models import AccessFailureLog, AccessLog
from django.core.cache import cache
from django.core.management import call_command
from django.db.models import F
from django.test import AsyncClient, Client
from django.utils import timezone

from core import login
from tests.config.test_settings import run
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed login attempts"
RESTAURANT = "192.0.2.10"  # where the staff work, all behind one address


@pytest.fixture
def caps(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    settings.LOGIN_ACCOUNT_FAILURE_LIMIT = 6
    settings.LOGIN_ACCOUNT_WINDOW_MINUTES = 60
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8
    settings.LOGIN_ADDRESS_WINDOW_MINUTES = 30
    return settings


def log_in(client, username, password, address, url="/accounts/login/", **extra):
    return client.post(
        url,
        {"username": username, "password": password, "next": "/"},
        REMOTE_ADDR=address,
        **extra,
    )


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def failures():
    return AccessFailureLog.objects


def test_many_addresses_against_one_account_close_it_at_the_account_cap(client, caps):
    # The account never logged in: no address is known for it, the restaurant's neither.
    staff = UserFactory(roles=["staff"], is_staff=True)
    # One guess per address, never near the pair's limit of 3; the admin's login counts too.
    for n in range(5):
        url = "/admin/login/?next=/admin/" if n % 2 else "/accounts/login/"
        wrong = log_in(client, staff.username, "guess", f"203.0.113.{n}", url=url)
        assert wrong.status_code == 200, n
    locking = log_in(client, staff.username, "guess", "203.0.113.5")
    assert locking.status_code == 429

    right = log_in(client, staff.username, PASSWORD, RESTAURANT)

    assert right.status_code == 429 and not logged_in(client)
    page = right.content.decode()
    assert right.templates[0].name == "registration/login.html"
    assert 'id="lockout"' in page and LOCKED in page
    assert "paused for the next 60 minutes." in page
    assert 'name="password"' in page
    admin = log_in(client, staff.username, PASSWORD, RESTAURANT, url="/admin/login/?next=/admin/")
    assert admin.status_code == 429 and not logged_in(client)
    # The guessers' addresses are not refused for other accounts.
    colleague = UserFactory()
    assert log_in(client, colleague.username, PASSWORD, "203.0.113.0").status_code == 302


def test_one_address_trying_many_accounts_is_refused_at_the_address_cap(client, caps):
    user = UserFactory(roles=["cashier"])
    sprayer = "198.51.100.7"
    for n in range(7):
        assert log_in(client, f"someone{n}", "Summer2024!", sprayer).status_code == 200, n
    assert log_in(client, "someone7", "Summer2024!", sprayer).status_code == 429

    right = log_in(client, user.username, PASSWORD, sprayer)

    assert right.status_code == 429 and not logged_in(client)
    assert "paused for the next 30 minutes." in right.content.decode()
    # The account itself is fine from anywhere else.
    assert log_in(client, user.username, PASSWORD, RESTAURANT).status_code == 302


def test_a_locked_pair_spends_little_of_the_account_cap_and_a_colleague_elsewhere_logs_in(
    client, caps
):
    waiter = UserFactory(roles=["waiter"])
    for _ in range(10):  # 3 failures count; the 7 refused while locked do not
        log_in(client, waiter.username, "guess", "203.0.113.50")
    assert failures().filter(username=waiter.username).count() == 3

    # At the restaurant, the account owner logs in: the lock is one account from one address.
    assert log_in(client, waiter.username, PASSWORD, RESTAURANT).status_code == 302
    client.logout()
    # A second guesser brings the account to 5 failures, still under its cap of 6 ...
    for _ in range(2):
        log_in(client, waiter.username, "guess", "203.0.113.51")
    assert log_in(client, waiter.username, PASSWORD, RESTAURANT).status_code == 302
    client.logout()
    # ... a third reaches it, and the account is refused from every address it never logged
    # in from. Not at the restaurant, where it did: guessers elsewhere must not be able to
    # keep staff locked out where they work.
    assert log_in(client, waiter.username, "guess", "203.0.113.52").status_code == 429
    assert log_in(client, waiter.username, PASSWORD, "198.51.100.20").status_code == 429
    assert log_in(client, waiter.username, PASSWORD, RESTAURANT).status_code == 302


def test_guessers_everywhere_do_not_lock_the_owner_out_where_they_logged_in(client, caps):
    owner = UserFactory(roles=["cashier"])
    assert log_in(client, owner.username, PASSWORD, RESTAURANT).status_code == 302
    client.logout()
    # Mistyping where the account is known counts towards the pair's lock only ...
    for _ in range(2):
        assert log_in(client, owner.username, "typo", RESTAURANT).status_code == 200
    # ... so 5 guessers elsewhere leave the account under its cap of 6 ...
    for n in range(5):
        assert log_in(client, owner.username, "guess", f"203.0.113.{n}").status_code == 200, n
    assert log_in(client, owner.username, PASSWORD, "198.51.100.20").status_code == 302
    client.logout()
    # ... and a sixth closes it.
    assert log_in(client, owner.username, "guess", "203.0.113.9").status_code == 429

    # The owner logs in where the account logged in before, and nowhere else.
    assert log_in(client, owner.username, PASSWORD, RESTAURANT).status_code == 302
    client.logout()
    assert log_in(client, owner.username, PASSWORD, "198.51.100.20").status_code == 302
    client.logout()
    stranger = log_in(client, owner.username, PASSWORD, "198.51.100.21")
    assert stranger.status_code == 429 and not logged_in(client)
    assert "paused for the next 60 minutes." in stranger.content.decode()
    # A guesser at a known address still meets the pair's lock.
    for _ in range(3):
        log_in(client, owner.username, "guess", RESTAURANT)
    assert log_in(client, owner.username, PASSWORD, RESTAURANT).status_code == 429


def test_known_addresses_are_kept_bounded_and_for_a_while(client, caps):
    owner = UserFactory()
    for _ in range(3):
        assert log_in(client, owner.username, PASSWORD, RESTAURANT).status_code == 302
        client.logout()
    for n in range(login.KNOWN_ADDRESSES_PER_ACCOUNT + 5):
        assert log_in(client, owner.username, PASSWORD, f"203.0.113.{n}").status_code == 302
        client.logout()

    logins = AccessLog.objects.filter(username=owner.username)
    # The latest login from each of the most recent addresses; the restaurant's went first.
    assert logins.count() == login.KNOWN_ADDRESSES_PER_ACCOUNT
    assert set(logins.values_list("ip_address", flat=True)) == {
        f"203.0.113.{n}" for n in range(5, login.KNOWN_ADDRESSES_PER_ACCOUNT + 5)
    }

    logins.filter(ip_address="203.0.113.5").update(
        attempt_time=timezone.now() - login.KNOWN_ADDRESSES_KEPT - timedelta(minutes=1)
    )
    cache.delete("login-failures-sweep")  # the logins above swept already: due again
    for n in range(6):  # close the account's cap
        log_in(client, owner.username, "guess", f"198.51.100.{n}")
    # Not known any more there, and swept with the failures.
    assert log_in(client, owner.username, PASSWORD, "203.0.113.5").status_code == 429
    assert not logins.filter(ip_address="203.0.113.5").exists()
    assert log_in(client, owner.username, PASSWORD, "203.0.113.6").status_code == 302


@pytest.mark.parametrize(
    ("address", "counted_as"),
    [
        ("192.0.2.10", "192.0.2.10"),
        ("::ffff:192.0.2.10", "192.0.2.10"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"),
        ("2001:db8:1:2::", "2001:db8:1:2::"),
        ("::1", "::1"),  # loopback stays itself, readable in the admin
    ],
)
def test_an_ipv6_address_counts_as_its_64(address, counted_as):
    assert login.address_key(address) == counted_as


def test_rotating_inside_an_ipv6_64_is_one_address_for_every_lock(client, caps):
    user = UserFactory()
    # One account from one /64: the pair's lock closes after 3, whichever address in it ...
    for n in range(10):
        log_in(client, user.username, "guess", f"2001:db8:1:2::{n + 1:x}")
    assert failures().filter(username=user.username).count() == 3
    assert set(failures().values_list("ip_address", flat=True)) == {"2001:db8:1:2::"}
    # ... so those 3 are all it spent of the account's cap of 6.
    assert log_in(client, user.username, PASSWORD, "2001:db8:9:9::1").status_code == 302
    client.logout()

    # One /64 for many accounts: the address cap closes after 8.
    for n in range(7):
        wrong = log_in(client, f"someone{n}", "guess", f"2001:db8:5:6:{n + 1:x}::1")
        assert wrong.status_code == 200, n
    assert log_in(client, "someone7", "guess", "2001:db8:5:6:ffff::1").status_code == 429
    refused = log_in(client, user.username, PASSWORD, "2001:db8:5:6::abcd")
    assert refused.status_code == 429
    assert "paused for the next 30 minutes." in refused.content.decode()
    assert log_in(client, user.username, PASSWORD, "2001:db8:5:7::1").status_code == 302
    client.logout()
    # Staff lift it with any address of the /64.
    call_command("axes_reset_ip", "2001:db8:5:6::1")
    assert log_in(client, user.username, PASSWORD, "2001:db8:5:6::abcd").status_code == 302


def test_an_account_is_known_at_its_whole_ipv6_64(client, caps):
    owner = UserFactory()
    assert log_in(client, owner.username, PASSWORD, "2001:db8:a:b::1").status_code == 302
    client.logout()
    for n in range(6):
        log_in(client, owner.username, "guess", f"203.0.113.{n}")
    assert log_in(client, owner.username, PASSWORD, "2001:db8:a:c::1").status_code == 429
    # The owner's device picked a new temporary address in the same network.
    assert log_in(client, owner.username, PASSWORD, "2001:db8:a:b:1234::9").status_code == 302


def test_behind_a_proxy_it_was_not_told_about_the_address_cap_refuses_no_one(
    client, caps, caplog, monkeypatch
):
    """The documented nginx with TRUSTED_PROXY_COUNT left at 0: every login comes from
    127.0.0.1 with the visitor's address in X-Forwarded-For."""
    monkeypatch.setattr(login, "_proxy_warned", False)
    caps.TRUSTED_PROXY_COUNT = 0
    user = UserFactory()

    def through_proxy(username, password, visitor):
        return log_in(client, username, password, "127.0.0.1", HTTP_X_FORWARDED_FOR=visitor)

    with caplog.at_level(logging.WARNING, logger="core.login"):
        for n in range(12):  # beyond the address cap of 8, each visitor guessing once
            wrong = through_proxy(f"someone{n}", "guess", f"203.0.113.{n}")
            assert wrong.status_code == 200, n
        assert through_proxy(user.username, PASSWORD, "198.51.100.7").status_code == 302

    warnings = [r for r in caplog.records if "TRUSTED_PROXY_COUNT looks wrong" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    # Without the header, loopback is an address like any other (a local `make run`).
    client.logout()
    assert log_in(client, user.username, PASSWORD, "127.0.0.1").status_code == 429


def test_a_cap_lets_go_as_its_failures_leave_the_window(client, caps):
    user = UserFactory()
    for n in range(6):
        log_in(client, user.username, "guess", f"203.0.113.{n}")
    refused = log_in(client, user.username, PASSWORD, RESTAURANT)
    assert refused.status_code == 429
    assert failures().filter(username=user.username).count() == 6  # refusals are not counted

    failures().update(attempt_time=F("attempt_time") - timedelta(minutes=45))
    later = log_in(client, user.username, PASSWORD, RESTAURANT)
    assert later.status_code == 429
    assert "paused for the next 15 minutes." in later.content.decode()

    failures().update(attempt_time=F("attempt_time") - timedelta(minutes=15))
    assert log_in(client, user.username, PASSWORD, RESTAURANT).status_code == 302


def test_staff_see_and_lift_the_caps(client, caps):
    user = UserFactory()
    for n in range(6):
        log_in(client, user.username, "guess", f"203.0.113.{n}")
    sprayer = "198.51.100.7"
    for n in range(8):
        log_in(client, f"someone{n}", "guess", sprayer)
    other = UserFactory()
    assert log_in(client, user.username, PASSWORD, RESTAURANT).status_code == 429
    assert log_in(client, other.username, PASSWORD, sprayer).status_code == 429

    # The admin lists the failures, the one that closed each cap marked as a lockout.
    staff = Client()
    staff.force_login(UserFactory(roles=["staff"], is_staff=True, is_superuser=True))
    listed = staff.get("/admin/axes/accessfailurelog/", {"q": user.username, "locked_out": "1"})
    assert listed.status_code == 200
    assert list(listed.context["cl"].result_list) == [
        failures().get(username=user.username, ip_address="203.0.113.5")
    ]
    assert failures().filter(locked_out=True).count() == 2  # the account's and the address'

    call_command("axes_reset_username", user.username)
    assert log_in(client, user.username, PASSWORD, RESTAURANT).status_code == 302

    # Deleting the address' failures in the admin lifts its cap.
    rows = failures().filter(ip_address=sprayer).values_list("pk", flat=True)
    deleted = staff.post(
        "/admin/axes/accessfailurelog/",
        {"action": "delete_selected", "_selected_action": list(rows), "post": "yes"},
    )
    assert deleted.status_code == 302
    client.logout()
    assert log_in(client, other.username, PASSWORD, sprayer).status_code == 302


def test_axes_reset_ip_lifts_the_address_cap(client, caps):
    user = UserFactory()
    for n in range(8):
        log_in(client, f"someone{n}", "guess", "198.51.100.7")
    assert log_in(client, user.username, PASSWORD, "198.51.100.7").status_code == 429

    call_command("axes_reset_ip", "198.51.100.7")

    assert log_in(client, user.username, PASSWORD, "198.51.100.7").status_code == 302


def test_caps_follow_the_settings(client, caps):
    user = UserFactory()
    caps.LOGIN_ACCOUNT_FAILURE_LIMIT = 2
    log_in(client, user.username, "guess", "203.0.113.1")
    assert log_in(client, user.username, "guess", "203.0.113.2").status_code == 429
    assert log_in(client, user.username, PASSWORD, RESTAURANT).status_code == 429

    caps.LOGIN_ACCOUNT_FAILURE_LIMIT = 3
    assert log_in(client, user.username, PASSWORD, RESTAURANT).status_code == 302
    client.logout()

    caps.LOGIN_ACCOUNT_FAILURE_LIMIT = 0  # off
    caps.LOGIN_ADDRESS_FAILURE_LIMIT = 0
    for n in range(12):
        log_in(client, user.username, "guess", f"203.0.113.{n}")
        log_in(client, f"someone{n}", "guess", "198.51.100.7")
    assert log_in(client, user.username, PASSWORD, "198.51.100.7").status_code == 302


def test_the_cap_page_under_asgi(caps):
    """Under daphne axes takes its asynchronous path, which hands over no response."""
    user = UserFactory()
    client = AsyncClient()  # every request from 127.0.0.1
    for n in range(8):
        async_to_sync(client.post)(
            "/accounts/login/", {"username": f"someone{n}", "password": "guess"}
        )
    right = async_to_sync(client.post)(
        "/accounts/login/", {"username": user.username, "password": PASSWORD}
    )
    assert right.status_code == 429
    assert "paused for the next 30 minutes." in right.content.decode()


def test_old_failures_are_swept(client, caps):
    old = failures().create(username="gone", ip_address="203.0.113.1", user_agent="x")
    recent = failures().create(username="kept", ip_address="203.0.113.1", user_agent="x")
    failures().filter(pk=old.pk).update(attempt_time=timezone.now() - timedelta(days=1, hours=1))
    failures().filter(pk=recent.pk).update(attempt_time=timezone.now() - timedelta(hours=23))

    log_in(client, "someone", "guess", "198.51.100.7")

    assert set(failures().values_list("username", flat=True)) == {"kept", "someone"}


# --- settings from the environment -------------------------------------------------------

PRINT_CAPS = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps([s.LOGIN_ACCOUNT_FAILURE_LIMIT, s.LOGIN_ACCOUNT_WINDOW_MINUTES, "
    "s.LOGIN_ADDRESS_FAILURE_LIMIT, s.LOGIN_ADDRESS_WINDOW_MINUTES, s.AXES_HANDLER, "
    "s.AXES_ENABLE_ACCESS_FAILURE_LOG]))"
)


def test_caps_come_from_the_environment():
    defaults = run(PRINT_CAPS, {"DEBUG": "true"}, python_code=True)
    assert defaults.returncode == 0, defaults.stderr
    handler = "core.login.LoginCapsHandler"
    assert json.loads(defaults.stdout) == [30, 60, 50, 60, handler, True]

    chosen = run(
        PRINT_CAPS,
        {
            "DEBUG": "true",
            "LOGIN_ACCOUNT_FAILURE_LIMIT": "20",
            "LOGIN_ACCOUNT_WINDOW_MINUTES": "120",
            "LOGIN_ADDRESS_FAILURE_LIMIT": "0",
            "LOGIN_ADDRESS_WINDOW_MINUTES": "15",
        },
        python_code=True,
    )
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout) == [20, 120, 0, 15, handler, True]

    wrong = run(
        PRINT_CAPS, {"DEBUG": "true", "LOGIN_ADDRESS_WINDOW_MINUTES": "0"}, python_code=True
    )
    assert wrong.returncode != 0
    assert "LOGIN_ADDRESS_WINDOW_MINUTES must be 1 minute or more" in wrong.stderr
