"""Logins refused after repeated failures, and what a refused login answers.

Three locks, all through django-axes, on the login page and the admin's login alike:
- one account from one address: LOGIN_FAILURE_LIMIT failures, then a pause of
  LOGIN_COOLOFF_MINUTES after the last one (axes' own lock, AXES_LOCKOUT_PARAMETERS). Staff
  behind a restaurant's one address are never locked by a guesser elsewhere;
- one account from any address it is not known at: LOGIN_ACCOUNT_FAILURE_LIMIT failures
  within the last LOGIN_ACCOUNT_WINDOW_MINUTES, so that many addresses (a botnet, an IPv6
  range) do not get unlimited guesses at one account;
- one address for any account: LOGIN_ADDRESS_FAILURE_LIMIT failures within the last
  LOGIN_ADDRESS_WINDOW_MINUTES, so that one address cannot try a password on every account.

An account is known at the addresses it logged in from (axes' access log, the admin's
Axes › Access logs: the latest login from each address, the KNOWN_ADDRESSES_PER_ACCOUNT most
recent addresses, each for KNOWN_ADDRESSES_KEPT). The account cap neither applies there nor
counts the failures made there — the account's own people mistyping are left to the first
lock — so guessers elsewhere, however many, cannot lock staff out where they work. An
account that never logged in, or a new address, has no such shelter.

Every lock counts an IPv6 address as its /64 network, the range one subscriber rotates
through at will, recorded as that network's first address (2001:db8:1:2:: for every address
in 2001:db8:1:2::/64); an IPv4 address counts as itself.

A login from a loopback address carrying X-Forwarded-For, with TRUSTED_PROXY_COUNT 0, comes
through a proxy Confirma was not told about: its address is the proxy's, everyone's. The
address cap does not apply to it and it is known for no account (its failures count towards
the account cap), and a warning says, once per process, that TRUSTED_PROXY_COUNT looks wrong.

The two caps count axes' access failure log (one row per failed login, listed in the admin
under Axes › Access failures; the row on which a cap closed is marked "locked out"). A login
refused by any lock is not recorded, so a cap lets go once fewer than its limit of failures
remain in its window. Staff lift a lock earlier with `manage.py axes_reset_username <name>`
(or `axes_reset_ip <address>`), which clears both records, or in the admin by deleting the
account's (or address') rows under Access attempts and Access failures.

A refused login gets the login page again, status 429, saying why and for how long, in the
visitor's language.
"""

import ipaddress
import logging
import math
import threading
from datetime import datetime, timedelta

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_str, get_client_username, get_cool_off
from axes.models import AccessFailureLog, AccessLog
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q, QuerySet
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from redis.exceptions import RedisError

from core.throttling import client_ip

logger = logging.getLogger(__name__)

# Failures stay listed in the admin this long (or as long as the longest window), for staff
# to look back on; older rows are deleted at most once per SWEEP_EVERY across processes.
FAILURES_KEPT = timedelta(days=1)
SWEEP_EVERY = timedelta(minutes=5)
# An account stays known at an address this long after its last login from there, at this
# many addresses at most (the most recent).
KNOWN_ADDRESSES_KEPT = timedelta(days=90)
KNOWN_ADDRESSES_PER_ACCOUNT = 20

_IPV6_HOST_BITS = (1 << 64) - 1
_proxy_warning_lock = threading.Lock()
_proxy_warned = False


def address_key(address: str) -> str:
    """What the locks count `address` as: an IPv4 address itself (also when written
    IPv4-mapped, ::ffff:192.0.2.1), an IPv6 address the first address of its /64 (but ::1,
    loopback, itself)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an address: counted as written, as axes would
    if ip.version == 4 or ip.is_loopback:
        return str(ip)
    if ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Address(int(ip) & ~_IPV6_HOST_BITS))


def login_address(request) -> str | None:
    """The client's address as every login lock counts it (AXES_CLIENT_IP_CALLABLE): the
    address core.throttling.client_ip finds, through address_key."""
    address = client_ip(request)
    return address_key(address) if address else address


def _is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return ip.is_loopback or bool(ip.version == 6 and ip.ipv4_mapped and ip.ipv4_mapped.is_loopback)


def _behind_unknown_proxy(request) -> bool:
    """Whether this request came through a proxy Confirma was not told about: from a loopback
    address, carrying X-Forwarded-For, with TRUSTED_PROXY_COUNT 0. Its address is the
    proxy's, shared by every visitor. Logs a warning the first time in a process."""
    global _proxy_warned
    if settings.TRUSTED_PROXY_COUNT or not request.META.get("HTTP_X_FORWARDED_FOR"):
        return False
    if not _is_loopback(request.META.get("REMOTE_ADDR")):
        return False
    with _proxy_warning_lock:
        warn, _proxy_warned = not _proxy_warned, True
    if warn:
        logger.warning(
            "TRUSTED_PROXY_COUNT looks wrong: logins come from a loopback address carrying "
            "X-Forwarded-For, but TRUSTED_PROXY_COUNT is 0, so every visitor has the proxy's "
            "address. The per-address login cap is not applied to it; set TRUSTED_PROXY_COUNT "
            "to the number of proxies in front of Confirma."
        )
    return True


def known_addresses(username: str, now: datetime) -> set[str]:
    """The addresses (as address_key writes them) `username` logged in from within
    KNOWN_ADDRESSES_KEPT before `now`."""
    logins = AccessLog.objects.filter(
        username=username,
        ip_address__isnull=False,
        attempt_time__gt=now - KNOWN_ADDRESSES_KEPT,
    )
    return set(logins.order_by().values_list("ip_address", flat=True).distinct())


def _cap_end(failures: QuerySet, limit: int, window_minutes: int, now: datetime) -> datetime | None:
    """When fewer than `limit` of `failures` fall within the window again, if `limit` of them
    fall within it now; None otherwise (or when `limit` is 0: the cap is off)."""
    if limit <= 0:
        return None
    window = timedelta(minutes=window_minutes)
    recent = failures.filter(attempt_time__gt=now - window).order_by("-attempt_time")
    oldest_counted = next(
        iter(recent.values_list("attempt_time", flat=True)[limit - 1 : limit]), None
    )
    return None if oldest_counted is None else oldest_counted + window


class LoginCapsHandler(AxesDatabaseHandler):
    """django-axes' database handler (AXES_HANDLER), refusing also the logins of an account,
    or from an address, whose failures reached its cap (see the module's docstring)."""

    def __init__(self):
        if not settings.AXES_ENABLE_ACCESS_FAILURE_LOG:
            raise ImproperlyConfigured(
                "The login caps count django-axes' access failure log: "
                "AXES_ENABLE_ACCESS_FAILURE_LOG must be True."
            )
        if settings.AXES_DISABLE_ACCESS_LOG:
            raise ImproperlyConfigured(
                "The account cap spares the addresses an account logged in from, kept in "
                "django-axes' access log: AXES_DISABLE_ACCESS_LOG must be False."
            )

    def cap_ends(self, request, credentials: dict | None = None) -> dict[str, datetime]:
        """The caps that refuse this login ("account", "address"), each with the time it lets
        go; empty when neither does. The caller has passed `request` through axes."""
        now = getattr(request, "axes_attempt_time", None) or timezone.now()
        username = get_client_username(request, credentials)
        address = getattr(request, "axes_ip_address", None)
        if address and _behind_unknown_proxy(request):
            address = None  # everyone's address: capping it would refuse everyone
        ends = {}
        if username:
            # Where the account logged in before, its own people are: neither capped nor
            # counted there. An address that is everyone's is no one's known address.
            known = known_addresses(username, now) if address else set()
            if address not in known:
                ends["account"] = _cap_end(
                    AccessFailureLog.objects.filter(username=username).exclude(
                        ip_address__in=known
                    ),
                    settings.LOGIN_ACCOUNT_FAILURE_LIMIT,
                    settings.LOGIN_ACCOUNT_WINDOW_MINUTES,
                    now,
                )
        if address:
            ends["address"] = _cap_end(
                AccessFailureLog.objects.filter(ip_address=address),
                settings.LOGIN_ADDRESS_FAILURE_LIMIT,
                settings.LOGIN_ADDRESS_WINDOW_MINUTES,
                now,
            )
        return {cap: end for cap, end in ends.items() if end is not None}

    def is_pair_locked(self, request, credentials: dict | None = None) -> bool:
        """Whether axes' own lock (one account from one address) refuses this login."""
        return super().is_locked(request, credentials)

    def is_locked(self, request, credentials: dict | None = None) -> bool:
        return self.is_pair_locked(request, credentials) or bool(
            self.cap_ends(request, credentials)
        )

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        """Records the failure as axes does; when it brings the account or the address to
        its cap, this very answer is the lockout page, as it is for axes' own lock."""
        refused_already = getattr(request, "axes_locked_out", False)
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None or refused_already:
            return  # axes recorded nothing
        self._sweep()
        if request.axes_locked_out or self.is_whitelisted(request, credentials):
            return
        caps = self.cap_ends(request, credentials)
        if not caps:
            return
        username = get_client_username(request, credentials)
        logger.warning(
            "AXES: Locking out %s: failed logins reached the %s cap.",
            get_client_str(
                username,
                request.axes_ip_address,
                request.axes_user_agent,
                request.axes_path_info,
                request,
            ),
            " and ".join(sorted(caps)),
        )
        latest = AccessFailureLog.objects.filter(
            username=username, ip_address=request.axes_ip_address
        ).order_by("-pk")
        AccessFailureLog.objects.filter(pk__in=latest.values("pk")[:1]).update(locked_out=True)
        request.axes_locked_out = True
        request.axes_credentials = credentials
        user_locked_out.send(
            "axes", request=request, username=username, ip_address=request.axes_ip_address
        )

    def user_logged_in(self, sender, request, user, **kwargs):
        """Records the login as axes does, in its access log, which is where the account is
        known: keeps the latest login from each address, and the most recent
        KNOWN_ADDRESSES_PER_ACCOUNT addresses."""
        super().user_logged_in(sender, request, user, **kwargs)
        self._sweep()
        logins = AccessLog.objects.filter(username=user.get_username())
        addresses, earlier = set(), []
        for pk, address in logins.order_by("-attempt_time", "-pk").values_list("pk", "ip_address"):
            if address in addresses or len(addresses) >= KNOWN_ADDRESSES_PER_ACCOUNT:
                earlier.append(pk)
            else:
                addresses.add(address)
        if earlier:
            AccessLog.objects.filter(pk__in=earlier).delete()

    def reset_attempts(
        self,
        *,
        ip_address: str | None = None,
        username: str | None = None,
        ip_or_username: bool = False,
    ) -> int:
        """Lifts the caps too (axes_reset_username, axes_reset_ip, axes_reset): deletes the
        matching failures along with axes' attempts; returns how many rows went. An IPv6
        address lifts the locks of its /64."""
        if ip_address:
            ip_address = address_key(ip_address)
        count = super().reset_attempts(
            ip_address=ip_address, username=username, ip_or_username=ip_or_username
        )
        failures = AccessFailureLog.objects.all()
        if ip_or_username:
            failures = failures.filter(Q(ip_address=ip_address) | Q(username=username))
        else:
            if ip_address:
                failures = failures.filter(ip_address=ip_address)
            if username:
                failures = failures.filter(username=username)
        lifted, _ = failures.delete()
        return count + lifted

    def _sweep(self) -> None:
        """Deletes failures no cap counts any more and older than FAILURES_KEPT, and logins
        older than KNOWN_ADDRESSES_KEPT."""
        try:
            due = cache.add("login-failures-sweep", True, timeout=SWEEP_EVERY.total_seconds())
        except RedisError:
            return  # housekeeping waits for the cache; the caps do not depend on it
        if not due:
            return
        kept = max(
            FAILURES_KEPT,
            timedelta(minutes=settings.LOGIN_ACCOUNT_WINDOW_MINUTES),
            timedelta(minutes=settings.LOGIN_ADDRESS_WINDOW_MINUTES),
        )
        now = timezone.now()
        AccessFailureLog.objects.filter(attempt_time__lt=now - kept).delete()
        AccessLog.objects.filter(attempt_time__lt=now - KNOWN_ADDRESSES_KEPT).delete()


def lockout_message(request, credentials: dict | None = None) -> str:
    """Why this login is refused, and until when, in the visitor's language."""
    cool_off = get_cool_off(request)
    handler = AxesProxyHandler.get_implementation()
    caps = handler.cap_ends(request, credentials) if isinstance(handler, LoginCapsHandler) else {}
    pair_locked = not caps or handler.is_pair_locked(request, credentials)
    if pair_locked and cool_off is None:
        return _(
            "Too many failed login attempts. For your security, logging in is blocked until "
            "a staff member lifts the block."
        )
    if not caps:
        minutes = max(1, math.ceil(cool_off.total_seconds() / 60))
        return ngettext(
            "Too many failed login attempts. For your security, logging in is paused for "
            "%(minutes)d minute after the last failed attempt.",
            "Too many failed login attempts. For your security, logging in is paused for "
            "%(minutes)d minutes after the last failed attempt.",
            minutes,
        ) % {"minutes": minutes}
    now = getattr(request, "axes_attempt_time", None) or timezone.now()
    remaining = max(caps.values()) - now
    if pair_locked:
        remaining = max(remaining, cool_off)  # the pair's pause ends cool_off at the latest
    minutes = max(1, math.ceil(remaining.total_seconds() / 60))
    return ngettext(
        "Too many failed login attempts. For your security, logging in is paused for the "
        "next %(minutes)d minute.",
        "Too many failed login attempts. For your security, logging in is paused for the "
        "next %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


def lockout_response(request, original_response=None, credentials=None):
    """The login page with the lockout explained (429), for the site's and the admin's
    login alike; the form posts back to the page that was locked.

    Built here rather than from `original_response`: axes passes none on its asynchronous
    path (daphne), and the form the view rendered only says the password was wrong. On that
    path the credentials come second; the username is read from the form either way."""
    if credentials is None and isinstance(original_response, dict):
        credentials = original_response
    username = request.POST.get("username", "")
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next") or request.GET.get("next", ""),
        "lockout_message": lockout_message(request, credentials),
    }
    return render(request, "registration/login.html", context, status=429)
