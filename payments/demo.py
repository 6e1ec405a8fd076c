"""Demo objects of the payments core: coupons, and some credit for the demo customer."""

from decimal import Decimal

from django.contrib.auth import get_user_model

from payments.models import Coupon
from payments.services import wallet_account_get, wallet_adjust


def payments_demo() -> list[str]:
    Coupon.objects.get_or_create(code="DEMO10", defaults={"kind": "percent", "value": 10})
    Coupon.objects.get_or_create(
        code="FIVEOFF", defaults={"kind": "fixed", "value": Decimal("5.00"), "currency": "BRL"}
    )
    lines = ["Coupons: DEMO10 (10 %), FIVEOFF (5.00 BRL off)"]
    User = get_user_model()
    customer = User.objects.filter(username="customer").first()
    admin = User.objects.filter(username="admin").first()
    if customer and admin:
        account = wallet_account_get(user=customer)
        if not account.entries.exists():
            wallet_adjust(
                user=customer, amount=Decimal("20.00"), actor=admin, reason="demo starting credit"
            )
        lines.append(f"customer credit: {wallet_account_get(user=customer).balance} BRL")
    return lines
