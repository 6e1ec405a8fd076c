"""Plan subscriptions: bought through the payments core, expired at period end, fixed
by staff without SQL.

Activation is the `subscription` purpose's fulfilment: it runs inside the payment's
confirmation transaction with the payment session locked, then locks the user's
subscription row. A payment session activates or renews at most once (a unique
constraint on its activation event), so a repeated notification never extends twice.
Every change writes a `SubscriptionEvent` and tells the user's pages.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import ConfirmaError
from core.roles import has_role
from notifications.audiences import audience_user
from notifications.services import event_publish
from payments.errors import InvalidParams, UnsupportedProvider
from payments.models import AuditSource, PaymentSession, PaymentStatus, Provider
from payments.providers import provider_get
from payments.registry import Purpose, Quote
from payments.services import payment_fulfil, payment_session_create
from payments.services.confirmation import Evidence
from subscriptions.errors import StaffOnly, SubscriptionError
from subscriptions.models import (
    PAYMENT_ACTIVATION_TYPES,
    Plan,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionStatus,
)

logger = logging.getLogger(__name__)

MAX_MANUAL_DAYS = 3660


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
        audience=audience_user(subscription.user_id),
        type=type_,
        payload={**_payload(subscription), **extra},
    )


@dataclass(frozen=True)
class PlanChange:
    """What buying (or being given) `plan` for `days` does to a subscription right now.

    - no running period (never active, expired, cancelled): **activated**, from now;
    - running, same tier: **renewed**, extended from the current period end;
    - running, another tier: **upgraded** / **downgraded** (a dearer / cheaper price per
      day; **plan_changed** when equal or not comparable): a new period starts now, and
      the unused time of the old plan is credited pro rata, converted at the two plans'
      prices per day (day for day when they are priced in different currencies).
    """

    kind: str
    start: datetime
    end: datetime
    previous_plan: Plan | None
    previous_end: datetime | None
    credit: timedelta

    @property
    def credit_days(self) -> Decimal:
        return (Decimal(self.credit.total_seconds()) / 86400).quantize(Decimal("0.01"))


def _daily(plan: Plan) -> Decimal:
    return plan.price / plan.period_days


def plan_change_kind(*, old: Plan, new: Plan) -> str:
    """Upgrade or downgrade between two plans of different tiers."""
    if old.currency != new.currency or _daily(old) == _daily(new):
        return SubscriptionEventType.PLAN_CHANGED
    if _daily(new) > _daily(old):
        return SubscriptionEventType.UPGRADED
    return SubscriptionEventType.DOWNGRADED


def plan_change_credit(*, old: Plan, new: Plan, remaining: timedelta) -> timedelta:
    """The unused `remaining` time of `old`, as time on `new` of the same value (whole
    seconds, rounded down)."""
    if remaining <= timedelta(0):
        return timedelta(0)
    ratio = Decimal(1) if old.currency != new.currency else _daily(old) / _daily(new)
    return timedelta(seconds=int(Decimal(remaining.total_seconds()) * ratio))


def plan_change_for(*, subscription: Subscription | None, plan: Plan, days: int, now):
    """The PlanChange for `subscription` (None: the user has none yet); changes nothing."""
    running = (
        subscription is not None
        and subscription.status == SubscriptionStatus.ACTIVE
        and subscription.current_period_end is not None
        and subscription.current_period_end > now
    )
    previous_plan = subscription.plan if subscription else None
    previous_end = subscription.current_period_end if subscription else None
    if not running:
        kind, start, credit = SubscriptionEventType.ACTIVATED, now, timedelta(0)
        end = now + timedelta(days=days)
    elif subscription.tier == plan.tier or previous_plan is None:
        kind, credit = SubscriptionEventType.RENEWED, timedelta(0)
        start = subscription.current_period_start
        end = previous_end + timedelta(days=days)
    else:
        kind, start = plan_change_kind(old=previous_plan, new=plan), now
        credit = plan_change_credit(old=previous_plan, new=plan, remaining=previous_end - now)
        end = now + timedelta(days=days) + credit
    return PlanChange(str(kind), start or now, end, previous_plan, previous_end, credit)


def _apply(subscription: Subscription, plan: Plan, days: int, now) -> PlanChange:
    """Activate, renew or change plan (see PlanChange). Caller holds the row lock."""
    change = plan_change_for(subscription=subscription, plan=plan, days=days, now=now)
    subscription.current_period_start = change.start
    subscription.current_period_end = change.end
    subscription.plan = plan
    subscription.tier = plan.tier
    subscription.status = SubscriptionStatus.ACTIVE
    return change


def _change_data(change: PlanChange, plan: Plan, days: int) -> dict:
    data = {
        "plan": plan.code,
        "days": days,
        "previous_plan": change.previous_plan.code if change.previous_plan else None,
        "previous_end": change.previous_end,
        "period_start": change.start,
        "period_end": change.end,
    }
    if change.credit:
        data["credit_days"] = str(change.credit_days)
        data["credit_basis"] = (
            "price_per_day" if change.previous_plan.currency == plan.currency else "day_for_day"
        )
    return data


def plan_change_check(*, user, plan: Plan) -> None:
    """Refuse, before anything is paid, a change to a plan priced in another currency
    while the current plan runs: Confirma has no exchange rate to credit its unused days."""
    if user is None or not getattr(user, "is_authenticated", False):
        return
    current = Subscription.objects.select_related("plan").filter(user=user).first()
    change = plan_change_for(subscription=current, plan=plan, days=1, now=timezone.now())
    if change.kind in (
        SubscriptionEventType.ACTIVATED,
        SubscriptionEventType.RENEWED,
    ) or (change.previous_plan.currency == plan.currency):
        return
    raise SubscriptionError(
        _(
            "You are on %(current)s, priced in %(currency)s (until %(end)s). Choose a plan "
            "priced in %(currency)s to change now, or this one once your plan has ended."
        )
        % {
            "current": change.previous_plan.name,
            "currency": change.previous_plan.currency,
            "end": date_format(
                timezone.localtime(change.previous_end, ZoneInfo(settings.BUSINESS_TIME_ZONE)),
                "DATETIME_FORMAT",
            )
            + f" ({settings.BUSINESS_TIME_ZONE})",
        },
        code="plan_change_currency",
    )


class SubscriptionPurpose(Purpose):
    name = "subscription"
    label = gettext_lazy("Subscription")
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
        plan_change_check(user=user, plan=plan)
        return Quote(
            plan.price,
            plan.currency,
            {"plan": plan.code},
            _("%(plan)s, %(days)d days") % {"plan": plan.name, "days": plan.period_days},
            metadata={"return_path": "/billing/return/"},
        )

    def fulfil(self, *, session: PaymentSession) -> None:
        subscription = _locked(session.user)
        if SubscriptionEvent.objects.filter(
            payment_session=session, type__in=PAYMENT_ACTIVATION_TYPES
        ).exists():
            return  # this payment already activated it (or staff did, standing for it)
        plan = Plan.objects.get(code=session.params["plan"])
        now = timezone.now()
        change = _apply(subscription, plan, plan.period_days, now)
        subscription.last_payment_at = session.completed_at or now
        subscription.save()
        _record(
            subscription,
            change.kind,
            actor_type=AuditSource.PROVIDER,
            session=session,
            provider=session.provider,
            **_change_data(change, plan, plan.period_days),
        )
        _publish(
            subscription, "subscription.activated", reference=session.reference, kind=change.kind
        )

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
            actor_type=AuditSource.PROVIDER,
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
    if actor is None or not (getattr(actor, "is_staff", False) or has_role(actor, "staff")):
        raise StaffOnly(_("Only staff may change a subscription by hand."))
    reason = (reason or "").strip()
    if not reason:
        raise SubscriptionError(_("A reason is required."), code="reason_required")
    return reason


def _payment_for_activation(session: PaymentSession, user) -> PaymentSession:
    """Lock `session` and check that it is a completed plan payment of `user` that has not
    activated anything yet. Called before the subscription row is locked (the order the
    confirmation path locks them in)."""
    session = PaymentSession.objects.select_for_update().get(pk=session.pk)
    if session.purpose != SubscriptionPurpose.name:
        raise SubscriptionError(
            _("Payment %(reference)s is not a plan payment.") % {"reference": session.reference},
            code="not_a_plan_payment",
        )
    if user is not None and session.user_id != user.pk:
        raise SubscriptionError(
            _("Payment %(reference)s was made by another user.") % {"reference": session.reference},
            code="payment_of_another_user",
        )
    if session.status != PaymentStatus.COMPLETED:
        raise SubscriptionError(
            _(
                "Payment %(reference)s is not completed (%(status)s): confirm it first, "
                "which activates the plan it paid for."
            )
            % {"reference": session.reference, "status": session.get_status_display()},
            code="payment_not_completed",
        )
    if SubscriptionEvent.objects.filter(
        payment_session=session, type__in=PAYMENT_ACTIVATION_TYPES
    ).exists():
        raise SubscriptionError(
            _("Payment %(reference)s has already activated the subscription.")
            % {"reference": session.reference},
            code="payment_already_activated",
        )
    return session


def subscription_activate_manually(
    *,
    user=None,
    plan: Plan | None = None,
    days: int | None = None,
    actor,
    reason: str,
    payment_session: PaymentSession | None = None,
) -> Subscription:
    """Staff give a user a plan for `days`, with a reason: the runbook's fix for a user
    who paid and was not activated, whether or not they have a subscription row yet.

    With `payment_session` (a completed plan payment of the user), the activation stands
    for that payment: user, plan and days default to the payment's, and the payment then
    counts as fulfilled (it never activates a second time). The period follows the same
    rule as a payment (see PlanChange). Writes a `manual_activation` event saying what it
    did (activated, renewed, upgraded…), kept on the returned row as `activation_event`,
    and tells the user's pages; with `payment_session`, the payments core then records the
    payment as delivered (see `_payment_record_delivered`), so call it outside any
    transaction, like the payment services. Raises
    SubscriptionError (nothing changed) for bad input; PermissionDenied for non-staff.
    """
    reason = _staff_checks(actor, reason)
    if user is None and payment_session is None:
        raise SubscriptionError(_("Choose a user."), code="user_required")
    with transaction.atomic():
        if payment_session is not None:
            payment_session = _payment_for_activation(payment_session, user)
            user = user or payment_session.user
            if plan is None:
                plan = Plan.objects.filter(code=payment_session.params.get("plan")).first()
        if plan is None:
            raise SubscriptionError(_("Choose a plan."), code="plan_required")
        if days is None:
            days = plan.period_days
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_MANUAL_DAYS:
            raise SubscriptionError(
                _("Days must be between 1 and %(max)d.") % {"max": MAX_MANUAL_DAYS},
                code="invalid_days",
            )
        subscription = _locked(user)
        now = timezone.now()
        change = _apply(subscription, plan, days, now)
        if payment_session is not None:
            subscription.last_payment_at = payment_session.completed_at or now
        subscription.save()
        subscription.activation_event = _record(
            subscription,
            SubscriptionEventType.MANUAL_ACTIVATION,
            actor_type=AuditSource.STAFF,
            actor=actor,
            reason=reason,
            session=payment_session,
            change=change.kind,
            **_change_data(change, plan, days),
        )
        _publish(
            subscription,
            "subscription.activated",
            kind="manual",
            change=change.kind,
            **({"reference": payment_session.reference} if payment_session else {}),
        )
    if payment_session is not None:
        _payment_record_delivered(payment_session, actor=actor, reason=reason)
    return subscription


def _payment_record_delivered(session: PaymentSession, *, actor, reason: str) -> None:
    """Tell the payments core that `session` is delivered, as a staff re-run of its
    fulfilment would (which finds the activation and does nothing else): its fulfilment
    error is cleared, a review it was held for is accepted, and its own audit says who and
    why. Runs after the activation committed: a failure here leaves the activation, and is
    logged (the payment no longer counts as undelivered either way)."""
    try:
        payment_fulfil(
            reference=session.reference,
            evidence=Evidence(source=AuditSource.STAFF, actor=actor, reason=reason),
            accept_review=True,
        )
    except ConfirmaError as exc:
        logger.warning(
            "payment %s activated by hand, not marked delivered: %s",
            session.reference,
            exc.message,
            extra={"reference": session.reference},
        )


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
            actor_type=AuditSource.STAFF,
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
                    actor_type=AuditSource.SYSTEM,
                    period_end=subscription.current_period_end,
                )
                _publish(subscription, "subscription.expired")
                done += 1
        if len(ids) < batch_size:
            return done
