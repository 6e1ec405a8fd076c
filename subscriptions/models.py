"""What a payment buys: pay-per-use machine time and plan subscriptions."""

import hashlib
import secrets

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.errors import InvalidTransition
from payments.models import AuditSource


def new_device_token() -> str:
    return "mdt_" + secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Machine(models.Model):
    name = models.CharField(_("name"), max_length=100)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    location = models.CharField(_("location"), max_length=200, blank=True, default="")
    active = models.BooleanField(_("active"), default=True)
    currency = models.CharField(_("currency"), max_length=3, default="BRL")
    # Only the hash of the controller's token is kept; the token is shown once.
    device_token_hash = models.CharField(
        _("controller token hash"), max_length=64, unique=True, null=True, blank=True
    )

    class Meta:
        verbose_name = _("machine")
        verbose_name_plural = _("machines")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class PriceOption(models.Model):
    machine = models.ForeignKey(
        Machine, verbose_name=_("machine"), on_delete=models.CASCADE, related_name="options"
    )
    minutes = models.PositiveIntegerField(_("minutes"))
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2)

    class Meta:
        verbose_name = _("price option")
        verbose_name_plural = _("price options")
        ordering = ["minutes"]
        constraints = [
            models.UniqueConstraint(fields=["machine", "minutes"], name="option_unique_minutes"),
            models.CheckConstraint(condition=Q(minutes__gt=0), name="option_minutes_positive"),
            models.CheckConstraint(condition=Q(price__gt=0), name="option_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.minutes} min — {self.price}"


class UsageStatus(models.TextChoices):
    AWAITING_PAYMENT = "awaiting_payment", _("awaiting payment")
    ACTIVE = "active", _("active")
    COMPLETED = "completed", _("completed")
    EXPIRED = "expired", _("expired")
    CANCELLED = "cancelled", _("cancelled")


USAGE_TRANSITIONS = {
    UsageStatus.AWAITING_PAYMENT: {UsageStatus.ACTIVE, UsageStatus.EXPIRED, UsageStatus.CANCELLED},
    UsageStatus.ACTIVE: {UsageStatus.COMPLETED},
    UsageStatus.COMPLETED: set(),
    UsageStatus.EXPIRED: set(),
    UsageStatus.CANCELLED: set(),
}


def usage_status_move(usage: "UsageSession", to: str) -> str:
    """Set `usage.status` to `to` when USAGE_TRANSITIONS allows it and return the status
    it had; otherwise InvalidTransition, and nothing changes. Nothing is saved: the caller
    holds the usage session's lock and saves the row."""
    before = usage.status
    if to not in USAGE_TRANSITIONS[before]:
        raise InvalidTransition(
            _("A usage session that is %(status)s cannot become %(to)s.")
            % {"status": UsageStatus(before).label, "to": UsageStatus(to).label},
            before=before,
            to=to,
        )
    usage.status = to
    return before


class UsageSession(models.Model):
    """Time bought on one machine by one customer."""

    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="usage_sessions",
        verbose_name=_("customer"),
    )
    machine = models.ForeignKey(
        Machine,
        verbose_name=_("machine"),
        on_delete=models.PROTECT,
        related_name="usage_sessions",
    )
    minutes = models.PositiveIntegerField(_("minutes"))
    amount = models.DecimalField(_("amount"), max_digits=10, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=UsageStatus.choices,
        default=UsageStatus.AWAITING_PAYMENT,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    # A PIX purchase holds its machine until then (MACHINE_RESERVATION_MINUTES after the
    # click, shorter than the PIX's own expiry); a failed or cancelled payment releases it.
    reserved_until = models.DateTimeField(_("reserved until"), null=True, blank=True)
    # The payment that activated it: at most one, ever.
    payment_session = models.OneToOneField(
        "payments.PaymentSession",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="usage_session",
        verbose_name=_("payment session"),
    )

    class Meta:
        verbose_name = _("usage session")
        verbose_name_plural = _("usage sessions")
        constraints = [
            # Purchases lock the machine row while they check and take it; this backs it.
            models.UniqueConstraint(
                fields=["machine"],
                condition=Q(status="active"),
                name="usage_one_active_per_machine",
            ),
            models.CheckConstraint(
                condition=~Q(status="active")
                | Q(started_at__isnull=False, ends_at__isnull=False, payment_session__isnull=False),
                name="usage_active_has_times_and_payment",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "ends_at"], name="usage_status_ends"),
            models.Index(fields=["machine", "status"], name="usage_machine_status"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.machine.code} {self.minutes} min ({self.status})"


class UsageEvent(models.Model):
    """Append-only audit of a usage session: activation, completion, staff changes."""

    usage_session = models.ForeignKey(
        UsageSession,
        verbose_name=_("usage session"),
        on_delete=models.PROTECT,
        related_name="events",
    )
    type = models.CharField(_("type"), max_length=30)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    source = models.CharField(
        _("source"), max_length=20, choices=AuditSource.choices, default=AuditSource.SYSTEM
    )
    reason = models.TextField(_("reason"), blank=True, default="")
    data = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("usage event")
        verbose_name_plural = _("usage events")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["usage_session"],
                condition=Q(type="activated"),
                name="usage_one_activation_event",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.usage_session_id} {self.type}"


class Plan(models.Model):
    """What a subscription can be bought as: a tier for a number of days at a price."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    tier = models.CharField(_("tier"), max_length=40)
    price = models.DecimalField(_("price"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    period_days = models.PositiveIntegerField(_("period (days)"))
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["price", "code"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="plan_price_positive"),
            models.CheckConstraint(condition=Q(period_days__gt=0), name="plan_period_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.price} {self.currency} / {self.period_days} d)"


class SubscriptionStatus(models.TextChoices):
    INACTIVE = "inactive", _("inactive")
    ACTIVE = "active", _("active")
    EXPIRED = "expired", _("expired")
    CANCELLED = "cancelled", _("cancelled")


class Subscription(models.Model):
    """A user's access to a plan: one row per user, changed only by services."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="subscription",
        verbose_name=_("user"),
    )
    plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.PROTECT, verbose_name=_("plan")
    )
    tier = models.CharField(_("tier"), max_length=40, blank=True, default="")
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=SubscriptionStatus.choices,
        default=SubscriptionStatus.INACTIVE,
    )
    current_period_start = models.DateTimeField(_("period start"), null=True, blank=True)
    current_period_end = models.DateTimeField(_("period end"), null=True, blank=True)
    last_payment_at = models.DateTimeField(_("last payment"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-updated_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="active")
                | Q(plan__isnull=False, current_period_end__isnull=False),
                name="subscription_active_has_plan_and_end",
            ),
        ]
        indexes = [models.Index(fields=["status", "current_period_end"], name="sub_status_end")]

    def __str__(self) -> str:
        return f"{self.user} — {self.tier or '-'} ({self.status})"


class SubscriptionEventType(models.TextChoices):
    ACTIVATED = "activated", _("activated")
    RENEWED = "renewed", _("renewed")
    UPGRADED = "upgraded", _("upgraded")
    DOWNGRADED = "downgraded", _("downgraded")
    PLAN_CHANGED = "plan_changed", _("plan changed")
    EXPIRED = "expired", _("expired")
    CANCELLED = "cancelled", _("cancelled")
    MANUAL_ACTIVATION = "manual_activation", _("manual activation")
    MANUAL_DEACTIVATION = "manual_deactivation", _("manual deactivation")
    PAYMENT_MISMATCH = "payment_mismatch", _("payment held for review")
    REFUNDED = "refunded", _("payment refunded")


# Event types that a payment session may cause at most once: what a paid plan did to the
# subscription, or the staff activation that stood in for it.
PAYMENT_ACTIVATION_TYPES = (
    SubscriptionEventType.ACTIVATED,
    SubscriptionEventType.RENEWED,
    SubscriptionEventType.UPGRADED,
    SubscriptionEventType.DOWNGRADED,
    SubscriptionEventType.PLAN_CHANGED,
    SubscriptionEventType.MANUAL_ACTIVATION,
)


class SubscriptionEvent(models.Model):
    """Append-only history of a subscription: who changed it, why, and with what payment."""

    subscription = models.ForeignKey(
        Subscription,
        verbose_name=_("subscription"),
        on_delete=models.PROTECT,
        related_name="events",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        related_name="subscription_events",
    )
    type = models.CharField(_("type"), max_length=30, choices=SubscriptionEventType.choices)
    actor_type = models.CharField(
        _("actor"), max_length=20, choices=AuditSource.choices, default=AuditSource.SYSTEM
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("staff user"),
    )
    reason = models.TextField(_("reason"), blank=True, default="")
    data = models.JSONField(_("details"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    payment_session = models.ForeignKey(
        "payments.PaymentSession",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="subscription_events",
        verbose_name=_("payment session"),
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("subscription event")
        verbose_name_plural = _("subscription events")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["payment_session"],
                condition=Q(type__in=[str(t) for t in PAYMENT_ACTIVATION_TYPES]),
                name="subscription_one_activation_per_payment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.type}"
