"""Webhook endpoints: no login, signature only, CSRF-exempt, body size capped.

Each request is stored first (its own transaction), then processed; the response code
tells the provider whether to retry.
"""

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from payments.models import Provider
from payments.services.webhooks import delivery_process, delivery_record, delivery_reject


def _receive(request, provider: str, endpoint: str) -> JsonResponse:
    cap = settings.WEBHOOK_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    declared_size = int(declared) if declared.isdigit() else 0
    body = request.read(cap + 1)
    oversized = len(body) > cap or declared_size > cap
    delivery = delivery_record(
        provider=provider,
        endpoint=endpoint,
        headers=dict(request.headers),
        query_string=request.META.get("QUERY_STRING", ""),
        body=body[:cap],
        body_size=max(len(body), declared_size),
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    if request.method != "POST":
        outcome = delivery_reject(delivery=delivery, status=405, error="method not allowed")
    elif oversized:
        outcome = delivery_reject(delivery=delivery, status=413, error="body too large")
    else:
        outcome = delivery_process(delivery_id=delivery.pk)
    body = outcome.body if provider == Provider.CLICK else {**outcome.body, "delivery": delivery.pk}
    return JsonResponse(body, status=outcome.status)


def _receive_in_worker_thread(request, provider: str, endpoint: str) -> JsonResponse:
    close_old_connections()
    try:
        return _receive(request, provider, endpoint)
    finally:
        close_old_connections()


async def _receive_async(request, provider: str, endpoint: str) -> JsonResponse:
    # Webhooks run in a thread pool of their own rather than in the one thread that serves
    # Django's sync views under ASGI: deliveries are processed in parallel, and a page that
    # waits on a webhook (the integration self-test) cannot block it.
    if settings.WEBHOOKS_IN_THREAD_POOL:
        return await sync_to_async(_receive_in_worker_thread, thread_sensitive=False)(
            request, provider, endpoint
        )
    return await sync_to_async(_receive)(request, provider, endpoint)


@csrf_exempt
async def mercadopago(request):
    return await _receive_async(request, Provider.MERCADOPAGO, "mercadopago")


@csrf_exempt
async def kiosk(request):
    return await _receive_async(request, Provider.KIOSK, "kiosk")


@csrf_exempt
async def click_prepare(request):
    return await _receive_async(request, Provider.CLICK, "click/prepare")


@csrf_exempt
async def click_complete(request):
    return await _receive_async(request, Provider.CLICK, "click/complete")


@csrf_exempt
async def nowpayments(request):
    return await _receive_async(request, Provider.NOWPAYMENTS, "nowpayments")


@csrf_exempt
async def coinbase(request):
    return await _receive_async(request, Provider.COINBASE, "coinbase")
