from decimal import Decimal

from subscriptions.models import Machine, Plan, PriceOption
from subscriptions.services.machines import machine_device_token_rotate

DEMO_MACHINES = [
    ("lav-01", "Lavadora 1", "Lavanderia Centro", [(30, "8.00"), (60, "14.00")]),
    ("sec-01", "Secadora 1", "Lavanderia Centro", [(20, "6.00"), (40, "10.00")]),
    ("mas-01", "Cadeira de massagem", "Shopping Norte", [(5, "3.00"), (15, "7.50")]),
]


def machines_demo() -> list[str]:
    lines = ["Machines (controller page: /machines/controller/?token=<device token>):"]
    for code, name, location, options in DEMO_MACHINES:
        machine, _ = Machine.objects.get_or_create(
            code=code, defaults={"name": name, "location": location}
        )
        for minutes, price in options:
            PriceOption.objects.get_or_create(
                machine=machine, minutes=minutes, defaults={"price": Decimal(price)}
            )
        token = machine_device_token_rotate(machine=machine)
        lines.append(f"  {code:<7} {name:<22} device token {token}")
    return lines


DEMO_PLANS = [
    ("basic-uzs", "Basic", "basic", "49000.00", "UZS", 30),
    ("pro-uzs", "Pro", "pro", "99000.00", "UZS", 30),
    ("pro-usd", "Pro (USD)", "pro", "9.99", "USD", 30),
]


def plans_demo() -> list[str]:
    lines = ["Plans (/billing/: Click for UZS, NOWPayments or Coinbase for any):"]
    for code, name, tier, price, currency, days in DEMO_PLANS:
        Plan.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "tier": tier,
                "price": Decimal(price),
                "currency": currency,
                "period_days": days,
            },
        )
        lines.append(f"  {code:<10} {name:<10} {price} {currency} / {days} days")
    return lines
