"""Rate limits on costly endpoints and pages, and the client address every limit keys on.

An API view opts in with `throttle_classes = [ScopedRateThrottle]` and a `throttle_scope`
named in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (settings read from the environment; an
empty rate turns the limit off). A page whose form does the same costly thing opts in with
`@throttle_page(scope, refused=...)`: it counts against the same scope, so the API and the
page share one budget per user (or address). A page whose caller is not a user, such as a
kiosk, names whom it counts with `key=`. Counts live in the default cache: Redis when
REDIS_URL is set, so that every server process shares them; otherwise each process counts
on its own.
"""

import functools
import json
import logging
import math
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.translation import ngettext
from redis.exceptions import RedisError
from rest_framework import throttling
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)


def client_ip(request) -> str | None:
    """The caller's address: REMOTE_ADDR, or with TRUSTED_PROXY_COUNT proxies in front, the
    address the outermost trusted proxy saw (never an address the client wrote itself).

    The same rule as DRF's NUM_PROXIES (set from the same setting), for django-axes."""
    remote_addr = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if not proxies or not forwarded:
        return remote_addr
    addresses = [a.strip() for a in forwarded.split(",")]
    return addresses[-min(proxies, len(addresses))] or remote_addr


class ScopedRateThrottle(throttling.ScopedRateThrottle):
    """At most N requests per period for each user (or, anonymous, each address) and scope.

    Differs from DRF's own in two ways a payment endpoint needs:
    - counting is atomic (one cache increment per request, in fixed windows), so a burst of
      simultaneous requests cannot all read the same count and all pass, as they can with
      DRF's read-then-write history;
    - the rate is read from the settings at each request (DRF reads it once, at import).
    When the cache cannot be reached the request is let through and a warning logged:
    taking payments matters more than limiting them while Redis is down.
    """

    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES
        if self.scope not in rates:
            raise ImproperlyConfigured(f"No throttle rate set for the {self.scope!r} scope.")
        return rates[self.scope] or None

    def allow_request(self, request, view) -> bool:
        scope = getattr(view, self.scope_attr, None)
        return not scope or self.allow(request, scope)

    def allow(self, request, scope: str, ident: str | None = None) -> bool:
        """Count this request against `scope`'s rate; False when it is beyond it (`wait()`
        then says for how long). `request` is a DRF request or a page's HttpRequest.

        Counted for `ident` when given (the caller must have authenticated what it names),
        otherwise for the request's user, or its address when anonymous."""
        self.scope = scope
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_end = (window + 1) * self.duration
        if ident is None:
            key = self.get_cache_key(request, None)
        else:
            key = self.cache_format % {"scope": self.scope, "ident": ident}
        key = f"{key}_{window}"
        try:
            count = self._count(key)
        except RedisError as exc:
            logger.warning(
                "Throttling of %s skipped: the cache is unreachable (%s)",
                self.scope,
                exc.__class__.__name__,
            )
            return True
        return count <= self.num_requests

    def _count(self, key: str) -> int:
        """This request's number in its window (1 for the first)."""
        # The window's key outlives the window by a little, never by a whole period.
        timeout = math.ceil(self.window_end - self.now) + 1
        for _ in range(2):
            self.cache.add(key, 0, timeout)
            try:
                return self.cache.incr(key)
            except ValueError:  # expired between add and incr: start it again
                continue
        return 1

    def wait(self) -> float:
        return max(self.window_end - self.now, 1.0)


def throttle_check(request, scope: str, *, ident: str | None = None) -> int | None:
    """Count this request against `scope`'s rate, exactly as the API's throttle does: for
    `ident` when given, otherwise per user (or address when anonymous).

    None when the request may go on (within the rate, the limit off, or the cache
    unreachable); otherwise the whole seconds until it may be tried again (at least 1)."""
    throttle = ScopedRateThrottle()
    if throttle.allow(request, scope, ident):
        return None
    return math.ceil(throttle.wait())


def throttle_message(retry_after: int) -> str:
    return ngettext(
        "Too many attempts; try again in %(seconds)d second.",
        "Too many attempts; try again in %(seconds)d seconds.",
        retry_after,
    ) % {"seconds": retry_after}


def throttle_page(
    scope: str,
    *,
    refused: Callable[..., HttpResponse],
    key: Callable[..., str] | None = None,
):
    """Limit a page's POSTs with the API's counter for `scope`.

    Counted per user, or per address when anonymous; with `key`, for whom
    `key(request, *args, **kwargs)` names instead (a string such as "kiosk:3").
    Beyond the rate the view does not run (nothing is created or stored) and the answer is
    status 429 with Retry-After: `refused(request, message, *args, **kwargs)` renders the
    page with the message where the page shows its errors; an htmx request gets the message
    alone, and a `confirma:throttled` event (HX-Trigger) carrying it. GETs are not counted.

    Put it below whatever authenticates the caller (login_required, a kiosk's token), so
    that a request nobody is answerable for is turned away before it counts against anyone's
    budget, and `key` only ever names an authenticated caller."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if request.method != "POST":
                return view(request, *args, **kwargs)
            ident = None if key is None else key(request, *args, **kwargs)
            retry_after = throttle_check(request, scope, ident=ident)
            if retry_after is None:
                return view(request, *args, **kwargs)
            message = throttle_message(retry_after)
            if getattr(request, "htmx", False):
                response = HttpResponse(
                    format_html(
                        '<ul class="messages" role="alert"><li class="error">{}</li></ul>',
                        message,
                    )
                )
                response["HX-Trigger"] = json.dumps(
                    {"confirma:throttled": {"message": message, "retry_after": retry_after}}
                )
            else:
                response = refused(request, message, *args, **kwargs)
            response.status_code = 429
            response["Retry-After"] = str(retry_after)
            return response

        return wrapper

    return decorator
