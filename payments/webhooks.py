"""Webhook endpoints: no login, signature only, CSRF-exempt, body size capped.

A verified request is stored with one INSERT and answered at once; workers confirm it
(`payments.services.intake`, `payments.services.deliveries`). A refused one is answered
4xx and only counted.

The views are plain synchronous views: under gunicorn (the production layout) each runs
in a worker thread that keeps its database connection. Under ASGI alone (the one-command
run, where daphne also serves HTTP) Django would run every sync view in one shared thread,
so there `WEBHOOKS_IN_THREAD_POOL` (set by config/asgi.py) serves them from a thread pool
of their own instead: deliveries are processed in parallel, and a page that waits on a
webhook (the integration self-test) cannot block it.
"""

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from core.throttling import client_ip
from payments.services.intake import webhook_receive


def _receive(request, provider: str, endpoint: str) -> JsonResponse:
    cap = settings.WEBHOOK_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    declared_size = int(declared) if declared.isdigit() else 0
    body = request.read(cap + 1)
    answer = webhook_receive(
        provider=provider,
        endpoint=endpoint,
        method=request.method,
        headers=dict(request.headers),
        query_string=request.META.get("QUERY_STRING", ""),
        body=body[:cap],
        body_size=max(len(body), declared_size),
        cap=cap,
        # Behind the proxy (TRUSTED_PROXY_COUNT), the address the proxy saw.
        remote_addr=client_ip(request),
    )
    response = JsonResponse(answer.body, status=answer.status)
    if answer.status >= 400:
        # Refusals are counted and logged once an hour by intake; Django would log a
        # warning for each one.
        response._has_been_logged = True
    return response


def _in_own_thread(request, provider: str, endpoint: str) -> JsonResponse:
    close_old_connections()
    try:
        return _receive(request, provider, endpoint)
    finally:
        close_old_connections()


def endpoint_view(provider: str, endpoint: str):
    """The view for one webhook URL (payments/urls.py), sync or thread-pooled (see above)."""
    if settings.WEBHOOKS_IN_THREAD_POOL:

        async def view(request):
            return await sync_to_async(_in_own_thread, thread_sensitive=False)(
                request, provider, endpoint
            )

    else:

        def view(request):
            return _receive(request, provider, endpoint)

    view.__name__ = view.__qualname__ = endpoint.replace("/", "_")
    return csrf_exempt(view)
