"""What the plan checkout shows: the plans on sale and, for a customer, the price after a
coupon and the plan change paying now would make (checked as checkout checks it, nothing
held). Reads built on the plan services, so kept apart from selectors.py, which they use."""

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from core.errors import ConfirmaError
from payments.services.coupons import coupon_apply
from subscriptions.models import (
    Plan,
)
from subscriptions.selectors import subscription_get
from subscriptions.services.plans import plan_change_check, plan_change_for, plan_providers


@dataclass(frozen=True)
class CheckoutQuote:
    """What the customer will pay for a plan and what paying does, shown before they pay."""

    plan: object
    price: Decimal
    discount: Decimal
    total: Decimal
    coupon_code: str = ""
    coupon_error: str = ""
    change: object = None  # subscriptions.services.plans.PlanChange
    refused: str = ""  # why checkout would refuse this plan now


def plan_checkout_quote(*, user, plan, subscription=None, coupon_code: str = "") -> CheckoutQuote:
    """The price after `coupon_code` (checked as checkout checks it, nothing held) and the
    plan change paying now would make for `user`'s `subscription`."""

    discount, coupon_error = Decimal("0.00"), ""
    coupon_code = (coupon_code or "").strip()[:40]
    if coupon_code:
        try:
            with transaction.atomic():
                _coupon, discount = coupon_apply(
                    code=coupon_code,
                    purpose="subscription",
                    amount=plan.price,
                    currency=plan.currency,
                )
        except ConfirmaError as exc:
            coupon_error = exc.message
    refused = ""
    try:
        plan_change_check(user=user, plan=plan)
    except ConfirmaError as exc:
        refused = exc.message
    return CheckoutQuote(
        plan=plan,
        price=plan.price,
        discount=discount,
        total=plan.price - discount,
        coupon_code=coupon_code if not coupon_error else "",
        coupon_error=coupon_error,
        change=plan_change_for(
            subscription=subscription, plan=plan, days=plan.period_days, now=timezone.now()
        ),
        refused=refused,
    )


def plans_for_checkout(*, user=None, coupons: dict | None = None) -> list:
    """The plans on sale, each with its providers and, for `user`, its CheckoutQuote
    (`coupons`: plan code → coupon code the customer typed)."""

    subscription = subscription_get(user=user) if user is not None else None
    plans = list(Plan.objects.filter(active=True))
    for plan in plans:
        plan.providers = plan_providers(plan)
        if user is not None:
            plan.quote = plan_checkout_quote(
                user=user,
                plan=plan,
                subscription=subscription,
                coupon_code=(coupons or {}).get(plan.code, ""),
            )
    return plans
