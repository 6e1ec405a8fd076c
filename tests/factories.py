"""factory-boy factories: one per model the tests create. Defaults are plausible and
unique where the model asks; a test passes what it asserts on."""

import string
import uuid
from datetime import timedelta
from decimal import Decimal

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

PASSWORD = "a-test-password-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            for role in extracted:
                self.groups.add(Group.objects.get_or_create(name=role)[0])
        if create:
            self.save()


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "notifications.Event"

    audience = "role:staff"
    type = "test.event"
    payload = factory.Dict({"n": 1})


class AlertFactory(factory.django.DjangoModelFactory):
    """An open alert raised once; its de-duplication key is its code unless told."""

    class Meta:
        model = "notifications.Alert"

    code = factory.Sequence(lambda n: f"test.alert.{n}")
    dedupe_key = factory.SelfAttribute("code")
    message = factory.SelfAttribute("code")


class CouponFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "payments.Coupon"

    code = factory.Sequence(lambda n: f"SAVE{n}")
    kind = "percent"
    value = 10


class MachineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "subscriptions.Machine"
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Machine {n}")
    code = factory.Sequence(lambda n: f"m-{n}")
    location = "Test street"

    @factory.post_generation
    def options(self, create, extracted, **kwargs):
        if create:
            from subscriptions.models import PriceOption

            for minutes, price in extracted or [(30, "8.00"), (60, "14.00")]:
                PriceOption.objects.create(machine=self, minutes=minutes, price=price)


class TokenFactory(factory.django.DjangoModelFactory):
    """An API token (DRF's authtoken) for a new user unless one is given."""

    class Meta:
        model = "authtoken.Token"

    user = factory.SubFactory(UserFactory)


# --- payments -------------------------------------------------------------------------------


class WalletAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "payments.WalletAccount"

    user = factory.SubFactory(UserFactory)
    currency = "BRL"
    balance = Decimal("0.00")


class LedgerEntryFactory(factory.django.DjangoModelFactory):
    """One line of a wallet's ledger; `balance_after` is what the test says it is."""

    class Meta:
        model = "payments.LedgerEntry"

    account = factory.SubFactory(WalletAccountFactory)
    kind = "topup"
    amount = Decimal("10.00")
    balance_after = factory.SelfAttribute("amount")


class PaymentSessionFactory(factory.django.DjangoModelFactory):
    """A session row as it would be stored, without the service's quote or provider call:
    for states and dates a test sets directly (open for an hour unless told)."""

    class Meta:
        model = "payments.PaymentSession"

    purpose = "wallet_topup"
    provider = "mercadopago"
    amount = Decimal("10.00")
    original_amount = factory.SelfAttribute("amount")
    currency = "BRL"
    idempotency_key = factory.LazyFunction(lambda: uuid.uuid4().hex)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "payments.WebhookDelivery"

    provider = "mercadopago"


class WebhookRefusalFactory(factory.django.DjangoModelFactory):
    """One hour's count of refused requests (the window starts at `first_at`'s hour)."""

    class Meta:
        model = "payments.WebhookRefusal"

    provider = "mercadopago"
    reason = "bad_signature"
    response_status = 401
    first_at = factory.LazyFunction(timezone.now)
    last_at = factory.SelfAttribute("first_at")
    window_start = factory.LazyAttribute(
        lambda r: r.first_at.replace(minute=0, second=0, microsecond=0)
    )


class PaymentAuditFactory(factory.django.DjangoModelFactory):
    """One row of a payment's audit trail (by default a note by the system)."""

    class Meta:
        model = "payments.PaymentAudit"

    session = factory.SubFactory(PaymentSessionFactory)
    action = "note"
    source = "system"


# --- subscriptions --------------------------------------------------------------------------


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "subscriptions.Plan"

    code = factory.Sequence(lambda n: f"plan-{n}")
    name = "Basic"
    tier = "basic"
    price = Decimal("49000.00")
    currency = "UZS"
    period_days = 30


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """A user's subscription row: without a plan and inactive, as a new customer's, unless
    `active=True` (then on `plan`, in its first period from now)."""

    class Meta:
        model = "subscriptions.Subscription"

    user = factory.SubFactory(UserFactory)

    class Params:
        active = factory.Trait(
            plan=factory.SubFactory(PlanFactory),
            tier=factory.SelfAttribute("plan.tier"),
            status="active",
            current_period_start=factory.LazyFunction(timezone.now),
            current_period_end=factory.LazyAttribute(
                lambda s: s.current_period_start + timedelta(days=s.plan.period_days)
            ),
        )


class SubscriptionEventFactory(factory.django.DjangoModelFactory):
    """One row of a subscription's history (by default its activation)."""

    class Meta:
        model = "subscriptions.SubscriptionEvent"

    subscription = factory.SubFactory(SubscriptionFactory)
    user = factory.SelfAttribute("subscription.user")
    type = "activated"


# --- tickets --------------------------------------------------------------------------------


def _prefix(n: int) -> str:
    """A, B, … Z, then AA, AB, …: unique two-letter ticket prefixes."""
    letters = string.ascii_uppercase
    return letters[n] if n < 26 else letters[n // 26 - 1] + letters[n % 26]


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tickets.Service"

    name = "Emissão de 2ª via"
    prefix = factory.Sequence(lambda n: _prefix(n % 702))
    price = Decimal("5.00")
    currency = "BRL"


class PrinterFactory(factory.django.DjangoModelFactory):
    """A printer that prints to nowhere (`dummy:`) unless given a url."""

    class Meta:
        model = "tickets.Printer"

    name = factory.Sequence(lambda n: f"Printer {n}")
    url = "dummy:"


class KioskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tickets.Kiosk"

    name = factory.Sequence(lambda n: f"Totem {n}")


# --- orders ---------------------------------------------------------------------------------


class TableFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "orders.Table"

    name = factory.Sequence(lambda n: f"Mesa {n + 1}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "orders.Product"

    name = "Tacos"
    price = Decimal("95.00")


class OrderFactory(factory.django.DjangoModelFactory):
    """A pending order at a new table, taken by a new waiter, in the restaurant's currency."""

    class Meta:
        model = "orders.Order"

    table = factory.SubFactory(TableFactory)
    waiter = factory.SubFactory(UserFactory, roles=["waiter"])
    currency = factory.LazyFunction(lambda: settings.ORDERS_CURRENCY)


class OrderLineFactory(factory.django.DjangoModelFactory):
    """A line at the product's price."""

    class Meta:
        model = "orders.OrderLine"

    order = factory.SubFactory(OrderFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 1
    unit_price = factory.SelfAttribute("product.price")


# --- task workers ---------------------------------------------------------------------------


class WorkerHeartbeatFactory(factory.django.DjangoModelFactory):
    """A background worker's last sign of life (now, unless told otherwise)."""

    class Meta:
        model = "config.WorkerHeartbeat"

    worker_id = factory.Sequence(lambda n: f"worker-{n}")
    hostname = "node"
    pid = factory.Sequence(lambda n: 1000 + n)


class TaskResultFactory(factory.django.DjangoModelFactory):
    """A row of the task queue (django-tasks' database backend): a task running on
    `worker` since `started_at`."""

    class Meta:
        model = "django_tasks_database.DBTaskResult"

    status = "RUNNING"
    task_path = "tickets.tasks.print_job_send"
    args_kwargs = factory.LazyFunction(lambda: {"args": [], "kwargs": {}})
    backend_name = "default"
    run_after = factory.LazyFunction(timezone.now)
    started_at = factory.LazyFunction(timezone.now)
    worker_ids = factory.LazyFunction(list)
    exception_class_path = ""
    traceback = ""
