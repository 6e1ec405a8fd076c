"""Creating payment sessions: idempotent, priced by the purpose, coupons applied."""

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import PermissionDenied
from payments.errors import (
    CouponError,
    IdempotencyConflict,
    InvalidParams,
    PaymentError,
    UnsupportedProvider,
)
from payments.models import AuditSource, PaymentAudit, PaymentSession
from payments.providers import own_money, provider_get
from payments.registry import purpose_get
from payments.services.confirmation import Evidence, payment_confirm_in_purchase
from payments.services.coupons import CENT, coupon_apply
from payments.services.transactions import purchase_transaction
from payments.services.wallet import wallet_spend

logger = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass
class CreateResult:
    session: PaymentSession
    created: bool


def _fingerprint(user, purpose, provider, amount, currency, params, coupon) -> str:
    canonical = json.dumps(
        {
            "user": getattr(user, "pk", None),
            "purpose": purpose,
            "provider": provider,
            "amount": None if amount is None else str(amount),
            "currency": currency,
            "params": params,
            "coupon": (coupon or "").strip().upper() or None,
        },
        sort_keys=True,
        cls=DjangoJSONEncoder,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(session: PaymentSession, fingerprint: str) -> CreateResult:
    if session.request_fingerprint != fingerprint:
        raise IdempotencyConflict()
    return CreateResult(session, created=False)


def _clean_amount(amount) -> Decimal | None:
    if amount is None or amount == "":
        return None
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        raise InvalidParams(_("The amount is not a number.")) from None
    if not value.is_finite() or value <= 0 or value != value.quantize(CENT):
        raise InvalidParams(_("The amount must be positive, with at most two decimals."))
    return value


def payment_session_create(
    *,
    user,
    purpose: str,
    provider: str,
    idempotency_key: str,
    amount=None,
    currency: str | None = None,
    params: dict | None = None,
    coupon_code: str | None = None,
    payer_email: str = "",
) -> CreateResult:
    """Create (or, for a key already used with the same request, return) a session.

    The purpose validates `params` and sets the price unless the client may choose it;
    a coupon is applied now and counted when the payment completes. With the wallet
    as provider the credit is spent and the payment confirmed in the same transaction
    (not enough credit: InsufficientCredit, nothing created). Provider payments
    (e.g. a PIX QR code) are created after the session is committed; when the provider
    is down the session stays pending and the same call may be repeated.

    A purchase that may be paid at once (wallet credit, a coupon, a free price) runs in
    its own transaction, like `payment_confirm` (see `payments.services.transactions`):
    call it outside any atomic block, or inside a `purchase_transaction()` that makes the
    caller's own rows and this payment one unit.
    """
    if not idempotency_key or not _KEY.match(idempotency_key):
        raise PaymentError(
            _("An Idempotency-Key header of 1 to 64 letters, digits or -_.: is required."),
            code="idempotency_key_required",
        )
    handler = purpose_get(purpose)
    if provider not in handler.providers:
        raise UnsupportedProvider(
            _("%(purpose)s cannot be paid with %(provider)s.")
            % {"purpose": purpose, "provider": provider[:30]}
        )
    user = user if user and user.is_authenticated else None
    if user is None and (not handler.allow_anonymous or own_money(provider)):
        raise PermissionDenied(_("Log in to pay for this."), code="login_required")
    if coupon_code and not handler.accepts_coupons:
        raise CouponError(_("Coupons do not apply to this purchase."), code="coupon_inapplicable")
    if params is not None and not isinstance(params, dict):
        raise InvalidParams(_("params must be an object."))
    params = params or {}
    client_amount = _clean_amount(amount)
    currency = currency.upper() if isinstance(currency, str) and currency else None
    if currency and not _CURRENCY.match(currency):
        raise InvalidParams(_("The currency must be an ISO 4217 code such as BRL."))
    fingerprint = _fingerprint(
        user, purpose, provider, client_amount, currency, params, coupon_code
    )

    existing = PaymentSession.objects.filter(idempotency_key=idempotency_key).first()
    if existing:
        result = _replay(existing, fingerprint)
    else:
        quote = handler.quote(params=params, user=user, amount=client_amount, currency=currency)
        try:
            result = _create(
                user, handler, provider, idempotency_key, fingerprint, quote, coupon_code
            )
        except IntegrityError:
            # Another request with the same key won the race: answer as a replay.
            existing = PaymentSession.objects.filter(idempotency_key=idempotency_key).first()
            if existing is None:
                raise
            result = _replay(existing, fingerprint)
    session = result.session
    if session.is_open and not session.provider_data:
        if session.expires_at <= timezone.now():
            raise PaymentError(
                _("This payment expired before it could be started; start a new one."),
                code="payment_expired",
            )
        payment_session_provider_sync(session=session, payer_email=payer_email)
        session.refresh_from_db()
    return result


def _create(user, handler, provider, key, fingerprint, quote, coupon_code) -> CreateResult:
    purpose = handler.name
    ttl = handler.session_ttl_minutes or settings.PAYMENT_SESSION_TTL_MINUTES
    from_credit = own_money(provider)
    paid_at_once = from_credit or bool(coupon_code) or quote.amount == 0
    with purchase_transaction() if paid_at_once else transaction.atomic():
        coupon, discount = None, Decimal("0.00")
        if coupon_code:
            coupon, discount = coupon_apply(
                code=coupon_code, purpose=purpose, amount=quote.amount, currency=quote.currency
            )
        session = PaymentSession.objects.create(
            purpose=purpose,
            params=quote.params,
            provider=provider,
            user=user,
            original_amount=quote.amount,
            discount=discount,
            amount=quote.amount - discount,
            coupon=coupon,
            currency=quote.currency,
            idempotency_key=key,
            request_fingerprint=fingerprint,
            metadata={"description": quote.description, **quote.metadata},
            status=handler.initial_status,
            expires_at=timezone.now() + timedelta(minutes=ttl),
        )
        PaymentAudit.objects.create(
            session=session,
            action="created",
            to_status=session.status,
            source=AuditSource.CUSTOMER,
            actor=user,
            data={"amount": session.amount, "coupon": coupon.code if coupon else None},
        )
        logger.info(
            "payment %s created for %s",
            session.reference,
            purpose,
            extra={"reference": session.reference},
        )
        if session.amount == 0:
            session.provider_data = {"free": True}
            session.save(update_fields=["provider_data"])
            payment_confirm_in_purchase(
                reference=session.reference,
                amount=session.amount,
                currency=session.currency,
                evidence=Evidence(source=AuditSource.SYSTEM, reason="fully discounted"),
            )
        elif from_credit:
            wallet_spend(
                user=user,
                amount=session.amount,
                currency=session.currency,
                session=session,
                reason=quote.description or purpose,
            )
            session.provider_data = {"wallet": True}
            session.save(update_fields=["provider_data"])
            payment_confirm_in_purchase(
                reference=session.reference,
                amount=session.amount,
                currency=session.currency,
                evidence=Evidence(source=AuditSource.WALLET, actor=user),
            )
        session.refresh_from_db()
        return CreateResult(session, created=True)


def payment_session_provider_sync(*, session: PaymentSession, payer_email: str = "") -> None:
    """Create the provider's side of a session (PIX QR code…) and store it.

    Called without any lock held: the provider call happens first, then a short
    transaction stores its answer. Raises ProviderUnavailable when the provider is down.
    """
    adapter = provider_get(session.provider)
    if adapter is None or not adapter.can_create:
        return
    minimum = adapter.min_expiry_minutes
    earliest = timezone.now() + timedelta(minutes=minimum)
    if minimum and session.expires_at < earliest:
        # Keep our expiry and the provider's in step when the provider needs more time.
        PaymentSession.objects.filter(pk=session.pk).update(expires_at=earliest)
        session.expires_at = earliest
    email = payer_email or getattr(session.user, "email", "") or ""
    created = adapter.create_payment(
        session, payer_email=email, description=session.metadata.get("description", "")
    )
    with transaction.atomic():
        locked = PaymentSession.objects.select_for_update().get(pk=session.pk)
        if locked.provider_data:
            return
        if created.provider_payment_id and not locked.provider_payment_id:
            locked.provider_payment_id = created.provider_payment_id
        locked.provider_data = created.data
        locked.save(update_fields=["provider_payment_id", "provider_data"])
        PaymentAudit.objects.create(
            session=locked,
            action="provider_created",
            from_status=locked.status,
            to_status=locked.status,
            source=AuditSource.SYSTEM,
            data={"provider_payment_id": created.provider_payment_id},
        )
