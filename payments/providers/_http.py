"""JSON over HTTPS to a provider's API, with Confirma's error mapping: the provider being
down (or refusing our credentials) is ProviderUnavailable, to be retried; a request it
refuses is a PaymentError shown to the customer; 404 is None."""

import requests
from django.conf import settings

from payments.errors import PaymentError, ProviderUnavailable


def provider_json(
    provider: str, method: str, url: str, *, headers: dict, json: dict | None = None
) -> dict | None:
    try:
        response = requests.request(
            method,
            url,
            headers={"Accept": "application/json", **headers},
            json=json,
            timeout=float(settings.PROVIDER_TIMEOUT_SECONDS),
        )
    except (requests.RequestException, OSError) as exc:
        raise ProviderUnavailable(f"{provider} unreachable: {exc.__class__.__name__}") from exc
    status = response.status_code
    if status >= 500 or status in (401, 403, 408, 429):
        raise ProviderUnavailable(f"{provider} answered {status}")
    if status == 404:
        return None
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderUnavailable(f"{provider} answered {status} without JSON") from exc
    if status >= 400:
        message = ""
        if isinstance(body, dict):
            error = body.get("error")
            message = body.get("message") or (
                error.get("message") if isinstance(error, dict) else ""
            )
        raise PaymentError(
            f"{provider} refused the request ({status}): {message}"[:300], code="provider_refused"
        )
    if not isinstance(body, dict):
        raise ProviderUnavailable(f"{provider} answered something other than a JSON object")
    return body
