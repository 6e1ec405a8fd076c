"""Restaurant orders paid by transfer: waiters upload proofs, cashiers verify them."""

from decimal import Decimal

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.models import AuditSource


class Table(models.Model):
    name = models.CharField(_("name"), max_length=40, unique=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("table")
        verbose_name_plural = _("tables")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    name = models.CharField(_("name"), max_length=100)
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("menu item")
        verbose_name_plural = _("menu")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="product_price_positive")
        ]

    def __str__(self) -> str:
        return self.name


class OrderStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    PREPARING = "preparing", _("preparing")
    READY = "ready", _("ready")
    DELIVERED = "delivered", _("delivered")
    AWAITING_VERIFICATION = "awaiting_verification", _("awaiting verification")
    PAID = "paid", _("paid")
    CANCELLED = "cancelled", _("cancelled")


S = OrderStatus
ORDER_TRANSITIONS: dict[str, set[str]] = {
    S.PENDING: {S.PREPARING, S.CANCELLED},
    S.PREPARING: {S.READY, S.CANCELLED},
    S.READY: {S.DELIVERED, S.CANCELLED},
    S.DELIVERED: {S.AWAITING_VERIFICATION, S.CANCELLED},
    S.AWAITING_VERIFICATION: {S.PAID, S.DELIVERED},
    S.PAID: set(),
    S.CANCELLED: set(),
}


class PaymentMethod(models.TextChoices):
    TRANSFER = "transfer", _("bank transfer")
    DIGITAL_WALLET = "wallet", _("digital wallet")
    CARD = "card", _("card")
    CASH = "cash", _("cash")


class Order(models.Model):
    table = models.ForeignKey(
        Table, verbose_name=_("table"), on_delete=models.PROTECT, related_name="orders"
    )
    waiter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="orders",
        verbose_name=_("waiter"),
    )
    status = models.CharField(
        _("status"), max_length=24, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    payment_method = models.CharField(
        _("payment method"), max_length=10, choices=PaymentMethod.choices, blank=True, default=""
    )
    rejections = models.PositiveIntegerField(_("rejections"), default=0)
    currency = models.CharField(_("currency"), max_length=3)
    notes = models.TextField(_("notes"), blank=True, default="")
    # Who entered the order (the waiter on their page, or staff in the admin); empty for
    # orders made before it was recorded.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("created by"),
    )
    # The key of the form that created it: a form sent twice makes one order.
    form_key = models.UUIDField(_("form key"), null=True, blank=True, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        indexes = [models.Index(fields=["status", "updated_at"], name="order_status_updated")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.table}"

    @property
    def total(self) -> Decimal:
        return sum((line.quantity * line.unit_price for line in self.lines.all()), Decimal("0.00"))


class OrderLine(models.Model):
    """A menu item, or (without a product) an amount the waiter typed in."""

    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="lines"
    )
    product = models.ForeignKey(
        Product,
        verbose_name=_("product"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), max_digits=10, decimal_places=2)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gt=0), name="line_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product or _('amount')}"


class ProofStatus(models.TextChoices):
    SUBMITTED = "submitted", _("submitted")
    APPROVED = "approved", _("approved")
    REJECTED = "rejected", _("rejected")


class PaymentProof(models.Model):
    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.PROTECT, related_name="proofs"
    )
    # Stored under a random name in private storage; served only by a checking view.
    file = models.FileField(_("file"), upload_to="proofs/", max_length=200)
    content_type = models.CharField(_("file type"), max_length=40)
    size = models.PositiveIntegerField(_("size (bytes)"))
    method = models.CharField(_("method"), max_length=10, choices=PaymentMethod.choices)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    attempt = models.PositiveIntegerField(_("attempt"))
    status = models.CharField(
        _("status"), max_length=10, choices=ProofStatus.choices, default=ProofStatus.SUBMITTED
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reviewed by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True, default="")
    payment_session = models.OneToOneField(
        "payments.PaymentSession",
        verbose_name=_("payment session"),
        on_delete=models.PROTECT,
        related_name="proof",
    )
    created_at = models.DateTimeField(_("uploaded at"), default=timezone.now)

    class Meta:
        verbose_name = _("payment proof")
        verbose_name_plural = _("payment proofs")
        constraints = [
            models.UniqueConstraint(fields=["order", "attempt"], name="proof_attempt_unique"),
            models.UniqueConstraint(
                fields=["order"], condition=Q(status="submitted"), name="proof_one_open_per_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order} #{self.attempt} ({self.status})"


class OrderEvent(models.Model):
    """Append-only audit of an order: every change of its status, who or what made it
    (`source`, and the user when there is one), why, and with which proof or payment."""

    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.PROTECT, related_name="events"
    )
    action = models.CharField(_("action"), max_length=30)
    from_status = models.CharField(_("status before"), max_length=24, blank=True, default="")
    to_status = models.CharField(_("status after"), max_length=24, blank=True, default="")
    source = models.CharField(_("source"), max_length=20, choices=AuditSource.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reason = models.TextField(_("reason"), blank=True, default="")
    data = models.JSONField(_("details"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.order_id} {self.action} by {self.source}"
