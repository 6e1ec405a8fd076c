from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone
from django.utils.translation import gettext as _

from payments.errors import CouponError
from payments.models import OPEN_STATUSES, Coupon, CouponKind, PaymentSession

CENT = Decimal("0.01")


def coupon_apply(*, code: str, purpose: str, amount: Decimal, currency: str):
    """Lock the coupon named `code` and return (coupon, discount) for this price.

    A coupon is held by every open session that carries it and counted as used when that
    payment completes; holds and uses together may not pass `max_uses`. Raises
    CouponError with a clear message for an unknown, inactive, expired, not yet valid,
    exhausted or inapplicable coupon. Caller holds a transaction.
    """
    code = (code or "").strip()
    coupon = Coupon.objects.select_for_update().filter(code__iexact=code).first() if code else None
    if coupon is None:
        raise CouponError(_("Unknown coupon code."), code="coupon_unknown")
    now = timezone.now()
    if not coupon.active:
        raise CouponError(_("This coupon is no longer active."), code="coupon_inactive")
    if coupon.valid_from and now < coupon.valid_from:
        raise CouponError(_("This coupon is not valid yet."), code="coupon_not_yet_valid")
    if coupon.valid_until and now >= coupon.valid_until:
        raise CouponError(_("This coupon has expired."), code="coupon_expired")
    if coupon.purposes and purpose not in coupon.purposes:
        raise CouponError(
            _("This coupon does not apply to this purchase."), code="coupon_inapplicable"
        )
    if coupon.kind == CouponKind.FIXED and coupon.currency and coupon.currency != currency:
        raise CouponError(
            _("This coupon does not apply to this currency."), code="coupon_inapplicable"
        )
    if coupon.max_uses is not None:
        held = PaymentSession.objects.filter(coupon=coupon, status__in=OPEN_STATUSES).count()
        if coupon.used_count + held >= coupon.max_uses:
            raise CouponError(_("This coupon has been used up."), code="coupon_exhausted")
    if coupon.kind == CouponKind.PERCENT:
        discount = (amount * coupon.value / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    else:
        discount = coupon.value
    return coupon, min(discount, amount)
