"""Plan subscriptions: bought through the payments core, expired at period end, fixed
by staff without SQL.

Activation is the `subscription` purpose's fulfilment: it runs inside the payment's
confirmation transaction with the payment session locked, then locks the user's
subscription row. A payment session activates or renews at most once (a unique
constraint on its activation event), so a repeated notification never extends twice.
Every change writes a `SubscriptionEvent` and tells the user's pages.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import ConfirmaError
from notifications.services import event_publish
from payments.errors import InvalidParams, UnsupportedProvider
from payments.models import PaymentSession, Provider
from payments.providers import provider_get
from payments.registry import Purpose, Quote
from subscriptions.models import (
    PAYMENT_ACTIVATION_TYPES,
    ActorType,
    Plan,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
)

logger = logging.getLogger(__name__)

MAX_MANUAL_DAYS = 3660


class SubscriptionError(ConfirmaError):
    code = "subscription_error"


def plan_providers(plan: Plan) -> list[str]:
    """The providers a plan can be paid with, in the order the checkout offers them."""
    return [
        provider
        for provider in SubscriptionPurpose.providers
        if provider_get(provider).takes(plan.currency)
    ]


def subscription_for(user) -> Subscription:
    subscription, _created = Subscription.objects.get_or_create(user=user)
    return subscription


def _locked(user) -> Subscription:
    subscription_for(user)
    return (
        Subscription.objects.select_for_update(of=("self",)).select_related("plan").get(user=user)
    )


def _payload(subscription: Subscription) -> dict:
    return {
        "status": subscription.status,
        "plan": subscription.plan.code if subscription.plan else None,
        "plan_name": subscription.plan.name if subscription.plan else None,
        "tier": subscription.tier,
        "current_period_start": subscription.current_period_start,
        "current_period_end": subscription.current_period_end,
    }


def _record(
    subscription: Subscription,
    type_: str,
    *,
    actor_type: str,
    actor=None,
    reason: str = "",
    session: PaymentSession | None = None,
    **data,
) -> SubscriptionEvent:
    event = SubscriptionEvent.objects.create(
        subscription=subscription,
        user_id=subscription.user_id,
        type=type_,
        actor_type=actor_type,
        actor=actor,
        reason=reason,
        payment_session=session,
        data=data,
    )
    logger.info(
        "subscription of user %s: %s",
        subscription.user_id,
        type_,
        extra={"reference": getattr(session, "reference", "")},
    )
    return event


def _publish(subscription: Subscription, type_: str, **extra) -> None:
    event_publish(
        audience=f"user:{subscription.user_id}",
        type=type_,
        payload={**_payload(subscription), **extra},
    )


def _extend(subscription: Subscription, plan: Plan, days: int, now) -> tuple[str, object]:
    """Activate, or extend from the later of now and the current period end."""
    running = (
        subscription.status == SubscriptionStatus.ACTIVE
        and subscription.current_period_end is not None
        and subscription.current_period_end > now
    )
    start = subscription.current_period_end if running else now
    previous_end = subscription.current_period_end
    if not running:
        subscription.current_period_start = now
    subscription.current_period_end = start + timedelta(days=days)
    subscription.plan = plan
    subscription.tier = plan.tier
    subscription.status = SubscriptionStatus.ACTIVE
    return ("renewed" if running else "activated"), previous_end


class SubscriptionPurpose(Purpose):
    name = "subscription"
    providers = (Provider.CLICK, Provider.NOWPAYMENTS, Provider.COINBASE)
    # A crypto payment can take a while to be confirmed on chain.
    session_ttl_minutes = 24 * 60

    def quote(self, *, params, user, amount, currency) -> Quote:
        code = params.get("plan")
        if not isinstance(code, str) or set(params) != {"plan"}:
            raise InvalidParams(_('params must be {"plan": "<plan code>"}.'))
        plan = Plan.objects.filter(code=code, active=True).first()
        if plan is None:
            raise InvalidParams(_("There is no such plan."), code="plan_not_found")
        return Quote(
            plan.price,
            plan.currency,
            {"plan": plan.code},
            _("%(plan)s, %(days)d days") % {"plan": plan.name, "days": plan.period_days},
            metadata={"return_path": "/billing/return/"},
        )

    def fulfil(self, *, session: PaymentSession) -> None:
        plan = Plan.objects.get(code=session.params["plan"])
        subscription = _locked(session.user)
        if SubscriptionEvent.objects.filter(
            payment_session=session, type__in=PAYMENT_ACTIVATION_TYPES
        ).exists():
            return  # this payment already activated it
        now = timezone.now()
        kind, previous_end = _extend(subscription, plan, plan.period_days, now)
        subscription.last_payment_at = session.completed_at or now
        subscription.save()
        _record(
            subscription,
            kind,
            actor_type=ActorType.PROVIDER,
            session=session,
            plan=plan.code,
            days=plan.period_days,
            provider=session.provider,
            previous_end=previous_end,
            period_end=subscription.current_period_end,
        )
        _publish(subscription, "subscription.activated", reference=session.reference, kind=kind)

    def fulfilled_q(self):
        return Exists(
            SubscriptionEvent.objects.filter(
                payment_session=OuterRef("pk"), type__in=PAYMENT_ACTIVATION_TYPES
            )
        )

    def on_hold(self, *, session, reason: str) -> None:
        if session.user_id is None:
            return
        subscription = subscription_for(session.user)
        kind = (
            SubscriptionEventType.REFUNDED
            if reason in ("refund", "chargeback")
            else SubscriptionEventType.PAYMENT_MISMATCH
        )
        _record(
            subscription,
            kind,
            actor_type=ActorType.PROVIDER,
            session=session,
            reason=session.fulfilment_error or reason,
            outcome=reason,
            paid=f"{session.paid_amount} {session.paid_currency}",
        )
        _publish(subscription, "subscription.payment_held", reference=session.reference)


def subscription_checkout(
    *, user, plan_code: str, provider: str, idempotency_key: str, coupon_code: str = ""
) -> PaymentSession:
    """Start paying for a plan: returns the payment session, whose `provider_data`
    holds the provider page to send the customer to. The same key returns the same
    session (a double click opens one payment)."""
    from payments.services import payment_session_create

    plan = Plan.objects.filter(code=plan_code, active=True).first()
    if plan is None:
        raise InvalidParams(_("There is no such plan."), code="plan_not_found")
    if provider not in plan_providers(plan):
        raise UnsupportedProvider(
            _("%(plan)s cannot be paid with %(provider)s.")
            % {"plan": plan.name, "provider": provider[:30]}
        )
    return payment_session_create(
        user=user,
        purpose="subscription",
        provider=provider,
        params={"plan": plan.code},
        idempotency_key=idempotency_key,
        coupon_code=coupon_code or None,
    ).session


def _staff_checks(actor, reason: str) -> str:
    if actor is None or not getattr(actor, "is_staff", False):
        raise SubscriptionError(_("Only staff may change a subscription by hand."))
    reason = (reason or "").strip()
    if not reason:
        raise SubscriptionError(_("A reason is required."), code="reason_required")
    return reason


def subscription_activate_manually(*, user, plan: Plan, days: int, actor, reason: str):
    """Staff give a user a plan for `days` (extending a running period), with a reason."""
    reason = _staff_checks(actor, reason)
    if not isinstance(days, int) or not 1 <= days <= MAX_MANUAL_DAYS:
        raise SubscriptionError(
            _("Days must be between 1 and %(max)d.") % {"max": MAX_MANUAL_DAYS},
            code="invalid_days",
        )
    with transaction.atomic():
        subscription = _locked(user)
        _kind, previous_end = _extend(subscription, plan, days, timezone.now())
        subscription.save()
        _record(
            subscription,
            SubscriptionEventType.MANUAL_ACTIVATION,
            actor_type=ActorType.STAFF,
            actor=actor,
            reason=reason,
            plan=plan.code,
            days=days,
            previous_end=previous_end,
            period_end=subscription.current_period_end,
        )
        _publish(subscription, "subscription.activated", kind="manual")
    return subscription


def subscription_deactivate(*, user, actor, reason: str) -> Subscription:
    """Staff end a user's access now, with a reason (the history keeps what it was)."""
    reason = _staff_checks(actor, reason)
    with transaction.atomic():
        subscription = _locked(user)
        if subscription.status != SubscriptionStatus.ACTIVE:
            raise SubscriptionError(_("This subscription is not active."), code="not_active")
        previous_end = subscription.current_period_end
        subscription.status = SubscriptionStatus.CANCELLED
        subscription.current_period_end = timezone.now()
        subscription.save()
        _record(
            subscription,
            SubscriptionEventType.MANUAL_DEACTIVATION,
            actor_type=ActorType.STAFF,
            actor=actor,
            reason=reason,
            previous_end=previous_end,
        )
        _publish(subscription, "subscription.deactivated")
    return subscription


def subscriptions_expire_due(*, now=None, batch_size: int = 500) -> int:
    """Active subscriptions whose period has ended become expired (event, notification).
    Each is locked and re-checked, so a renewal committed meanwhile wins."""
    now = now or timezone.now()
    done, last = 0, 0
    while True:
        ids = list(
            Subscription.objects.filter(
                status=SubscriptionStatus.ACTIVE, current_period_end__lte=now, pk__gt=last
            )
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return done
        last = ids[-1]
        for pk in ids:
            with transaction.atomic():
                subscription = (
                    Subscription.objects.select_for_update(skip_locked=True, of=("self",))
                    .filter(pk=pk, status=SubscriptionStatus.ACTIVE, current_period_end__lte=now)
                    .select_related("plan")
                    .first()
                )
                if subscription is None:
                    continue
                subscription.status = SubscriptionStatus.EXPIRED
                subscription.save()
                _record(
                    subscription,
                    SubscriptionEventType.EXPIRED,
                    actor_type=ActorType.SYSTEM,
                    period_end=subscription.current_period_end,
                )
                _publish(subscription, "subscription.expired")
                done += 1
        if len(ids) < batch_size:
            return done
