"""Kiosk tokens: the secret a kiosk shows to be itself (stored hashed)."""

import hashlib
import logging
import secrets

from tickets.models import (
    Kiosk,
)

logger = logging.getLogger(__name__)


def kiosk_token_rotate(*, kiosk: Kiosk) -> str:
    token = "kst_" + secrets.token_urlsafe(24)
    Kiosk.objects.filter(pk=kiosk.pk).update(token_hash=hashlib.sha256(token.encode()).hexdigest())
    return token


def kiosk_for_token(token: str) -> Kiosk | None:
    if not token or not token.startswith("kst_"):
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    return Kiosk.objects.filter(token_hash=digest, active=True).select_related("printer").first()
