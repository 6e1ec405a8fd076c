import secrets
from decimal import Decimal

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.errors import InvalidTransition

ZERO = Decimal("0")


def new_reference() -> str:
    """An opaque public reference: random, never derived from user data."""
    return "ps_" + secrets.token_urlsafe(18)


class Provider(models.TextChoices):
    MERCADOPAGO = "mercadopago", "Mercado Pago"
    KIOSK = "kiosk", _("Kiosk terminal")
    CLICK = "click", "Click"
    NOWPAYMENTS = "nowpayments", "NOWPayments"
    COINBASE = "coinbase", "Coinbase Commerce"
    WALLET = "wallet", _("Wallet credit")
    MANUAL_PROOF = "manual_proof", _("Manual proof")


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    PROCESSING = "processing", _("processing")
    COMPLETED = "completed", _("completed")
    FAILED = "failed", _("failed")
    EXPIRED = "expired", _("expired")
    CANCELLED = "cancelled", _("cancelled")
    REFUNDED = "refunded", _("refunded")


# The allowed transitions, written once. A completed payment may still arrive late on a
# failed, expired or cancelled session: that is handled as a late payment, not here.
PAYMENT_TRANSITIONS: dict[str, set[str]] = {
    PaymentStatus.PENDING: {
        PaymentStatus.PROCESSING,
        PaymentStatus.COMPLETED,
        PaymentStatus.FAILED,
        PaymentStatus.EXPIRED,
        PaymentStatus.CANCELLED,
    },
    PaymentStatus.PROCESSING: {
        PaymentStatus.COMPLETED,
        PaymentStatus.FAILED,
        PaymentStatus.EXPIRED,
        PaymentStatus.CANCELLED,
    },
    PaymentStatus.COMPLETED: {PaymentStatus.REFUNDED},
    PaymentStatus.FAILED: set(),
    PaymentStatus.EXPIRED: set(),
    PaymentStatus.CANCELLED: set(),
    PaymentStatus.REFUNDED: set(),
}
OPEN_STATUSES = (PaymentStatus.PENDING, PaymentStatus.PROCESSING)
CLOSED_UNPAID_STATUSES = (PaymentStatus.FAILED, PaymentStatus.EXPIRED, PaymentStatus.CANCELLED)
PAID_STATUSES = (PaymentStatus.COMPLETED, PaymentStatus.REFUNDED)


def payment_transition_check(before: str, to: str, *, late: bool = False) -> None:
    """Raise InvalidTransition unless PAYMENT_TRANSITIONS lets a payment go from `before`
    to `to`; `late` also lets a failed, expired or cancelled one become completed (money
    that arrived after the session closed)."""
    late_payment = late and before in CLOSED_UNPAID_STATUSES and to == PaymentStatus.COMPLETED
    if to not in PAYMENT_TRANSITIONS[before] and not late_payment:
        raise InvalidTransition(
            _("A payment that is %(status)s cannot become %(to)s.")
            % {"status": PaymentStatus(before).label, "to": PaymentStatus(to).label},
            before=before,
            to=to,
        )


def payment_status_move(session: "PaymentSession", to: str, *, late: bool = False) -> str:
    """Set `session.status` to `to` (checked by `payment_transition_check`) and return the
    status it had. Nothing is saved: the caller holds the session lock and saves the row."""
    before = session.status
    payment_transition_check(before, to, late=late)
    session.status = to
    return before


class PaymentSession(models.Model):
    """One payment attempt for one purpose (a top-up, a machine session, a ticket…)."""

    reference = models.CharField(_("reference"), max_length=64, unique=True, default=new_reference)
    purpose = models.CharField(_("purpose"), max_length=40)
    params = models.JSONField(_("parameters"), default=dict, encoder=DjangoJSONEncoder)
    provider = models.CharField(_("provider"), max_length=20, choices=Provider.choices)
    provider_payment_id = models.CharField(
        _("provider payment id"), max_length=100, blank=True, default=""
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payment_sessions",
    )
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    original_amount = models.DecimalField(_("original amount"), max_digits=14, decimal_places=2)
    discount = models.DecimalField(_("discount"), max_digits=14, decimal_places=2, default=ZERO)
    coupon = models.ForeignKey(
        "payments.Coupon",
        verbose_name=_("coupon"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sessions",
    )
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(
        _("status"), max_length=12, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, unique=True)
    request_fingerprint = models.CharField(
        _("request fingerprint"), max_length=64, blank=True, default=""
    )
    metadata = models.JSONField(_("metadata"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    provider_data = models.JSONField(
        _("provider data"), default=dict, blank=True, encoder=DjangoJSONEncoder
    )
    expires_at = models.DateTimeField(_("expires at"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    fulfilled_at = models.DateTimeField(_("fulfilled at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # What the provider says was paid, and the problems found when it was.
    paid_amount = models.DecimalField(
        _("amount paid"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    paid_currency = models.CharField(_("currency paid"), max_length=3, blank=True, default="")
    amount_mismatch = models.BooleanField(_("amount mismatch"), default=False)
    late_payment = models.BooleanField(_("late payment"), default=False)
    refund_due = models.BooleanField(_("refund due"), default=False)
    fulfilment_error = models.TextField(_("fulfilment error"), blank=True, default="")
    fulfilment_attempts = models.PositiveIntegerField(_("fulfilment attempts"), default=0)

    class Meta:
        verbose_name = _("payment session")
        verbose_name_plural = _("payment sessions")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_payment_id"],
                condition=~Q(provider_payment_id=""),
                name="payment_unique_provider_payment_id",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(discount__gte=0) & Q(amount=F("original_amount") - F("discount")),
                name="payment_amount_is_original_minus_discount",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in PaymentStatus]),
                name="payment_status_known",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="payment_status_expiry"),
            models.Index(fields=["status", "created_at"], name="payment_status_created"),
            models.Index(fields=["purpose", "status"], name="payment_purpose_status"),
            models.Index(
                fields=["completed_at"],
                condition=Q(fulfilled_at__isnull=True, status="completed"),
                name="payment_unfulfilled",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.purpose} {self.amount} {self.currency} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class AuditSource(models.TextChoices):
    """Who or what acted: the one vocabulary of every audit trail (payments, subscriptions,
    machine time, orders)."""

    CUSTOMER = "customer", _("customer")
    WEBHOOK = "webhook", _("provider webhook")
    POLL = "poll", _("provider poll")
    # A payment the provider confirmed, seen from what it paid for (e.g. a subscription).
    PROVIDER = "provider", _("provider")
    WAITER = "waiter", _("waiter")
    KITCHEN = "kitchen", _("kitchen")
    CASHIER = "cashier", _("cashier")
    STAFF = "staff", _("staff")
    RECONCILER = "reconciler", _("reconciler")
    WALLET = "wallet", _("wallet")
    SYSTEM = "system", _("system")


class PaymentAudit(models.Model):
    """Append-only: every change to a payment session, who made it and from what evidence."""

    session = models.ForeignKey(
        PaymentSession,
        verbose_name=_("payment session"),
        on_delete=models.PROTECT,
        related_name="audits",
    )
    action = models.CharField(_("action"), max_length=40)
    from_status = models.CharField(_("status before"), max_length=12, blank=True, default="")
    to_status = models.CharField(_("status after"), max_length=12, blank=True, default="")
    source = models.CharField(_("source"), max_length=12, choices=AuditSource.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reason = models.TextField(_("reason"), blank=True, default="")
    delivery = models.ForeignKey(
        "payments.WebhookDelivery",
        verbose_name=_("webhook delivery"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audits",
    )
    data = models.JSONField(_("details"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("payment audit entry")
        verbose_name_plural = _("payment audit trail")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.session.reference} {self.action} by {self.source}"


class CouponKind(models.TextChoices):
    PERCENT = "percent", _("percent")
    FIXED = "fixed", _("fixed amount")


class Coupon(models.Model):
    code = models.CharField(_("code"), max_length=40, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=CouponKind.choices)
    value = models.DecimalField(_("value"), max_digits=12, decimal_places=2)
    currency = models.CharField(
        _("currency"), max_length=3, blank=True, default="", help_text=_("For fixed amounts.")
    )
    purposes = models.JSONField(
        _("purposes"), default=list, blank=True, help_text=_("Empty: every purpose.")
    )
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    max_uses = models.PositiveIntegerField(_("maximum uses"), null=True, blank=True)
    used_count = models.PositiveIntegerField(_("times used"), default=0)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        constraints = [
            models.CheckConstraint(condition=Q(value__gt=0), name="coupon_value_positive"),
            models.CheckConstraint(
                condition=~Q(kind="percent") | Q(value__lte=100), name="coupon_percent_at_most_100"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class CouponRedemption(models.Model):
    """A coupon counted as used: written when the payment that carried it completes."""

    coupon = models.ForeignKey(
        Coupon, verbose_name=_("coupon"), on_delete=models.PROTECT, related_name="redemptions"
    )
    session = models.OneToOneField(
        PaymentSession,
        verbose_name=_("payment session"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("coupon redemption")
        verbose_name_plural = _("coupon redemptions")

    def __str__(self) -> str:
        return f"{self.coupon} → {self.session.reference}"


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received", _("received")
    PROCESSED = "processed", _("processed")
    DUPLICATE = "duplicate", _("duplicate")
    IGNORED = "ignored", _("ignored")
    REJECTED = "rejected", _("rejected")
    FAILED = "failed", _("failed")
    DEAD = "dead", _("dead")


class WebhookDelivery(models.Model):
    """Every request to a webhook URL, stored before any processing."""

    provider = models.CharField(_("provider"), max_length=20, choices=Provider.choices)
    endpoint = models.CharField(_("endpoint"), max_length=40, blank=True, default="")
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    remote_addr = models.GenericIPAddressField(_("remote address"), null=True, blank=True)
    headers = models.JSONField(_("headers"), default=dict)
    query_string = models.TextField(_("query string"), blank=True, default="")
    body = models.BinaryField(_("raw body"), blank=True, default=b"")
    body_size = models.PositiveIntegerField(_("body size"), default=0)
    signature_valid = models.BooleanField(_("signature valid"), null=True)
    event_id = models.CharField(_("provider event id"), max_length=120, blank=True, default="")
    status = models.CharField(
        _("status"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.RECEIVED
    )
    response_status = models.PositiveSmallIntegerField(_("answered"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True, default="")
    traceback = models.TextField(_("traceback"), blank=True, default="")
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    # A dead delivery is kept, whatever its age, until staff have dealt with it.
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    # Who marked a dead delivery dealt with, and what they said they did.
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("resolved by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    notes = models.TextField(_("notes"), blank=True, default="")
    # A replay made by a person (the admin's Replay): who asked for it.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    session = models.ForeignKey(
        PaymentSession,
        verbose_name=_("payment session"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    # A replay (admin, command) is a new attempt of a stored delivery, linked to it; the
    # original keeps its own outcome.
    replay_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replays",
        verbose_name=_("replay of"),
    )
    # Which worker holds it while processing (until its lease, `next_attempt_at`, ends).
    claimed_by = models.CharField(_("claimed by"), max_length=80, blank=True, default="")

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            models.Index(fields=["provider", "event_id"], name="delivery_provider_event"),
            models.Index(fields=["status", "next_attempt_at"], name="delivery_retry"),
            models.Index(fields=["received_at"], name="delivery_received"),
            # What the workers claim, oldest first.
            models.Index(
                fields=["id"],
                name="delivery_waiting",
                condition=Q(status__in=["received", "failed"]),
            ),
        ]
        constraints = [
            # A provider's event is stored once; repeats are answered as duplicates.
            models.UniqueConstraint(
                fields=["provider", "event_id"],
                condition=~Q(event_id="") & Q(replay_of__isnull=True),
                name="delivery_one_per_event",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.provider} {self.status}"

    @property
    def body_text(self) -> str:
        return bytes(self.body).decode("utf-8", errors="replace")


class WebhookRefusal(models.Model):
    """Requests refused at the webhook URLs (bad signature, unreadable, too large, a
    repeated event), counted per provider, reason, address and hour. Only the first of
    each hour keeps a sample: a hash of the body and at most its first 1 KB and 1 KB of
    headers, never the whole body."""

    provider = models.CharField(_("provider"), max_length=20)
    endpoint = models.CharField(_("endpoint"), max_length=40, blank=True, default="")
    reason = models.CharField(_("reason"), max_length=40)
    response_status = models.PositiveSmallIntegerField(_("answered"))
    remote_addr = models.CharField(_("remote address"), max_length=45, blank=True, default="")
    window_start = models.DateTimeField(_("hour"))
    first_at = models.DateTimeField(_("first at"))
    last_at = models.DateTimeField(_("last at"))
    count = models.PositiveIntegerField(_("count"), default=1)
    body_size = models.PositiveIntegerField(_("body size"), default=0)
    body_sha256 = models.CharField(_("body SHA-256"), max_length=64, blank=True, default="")
    body_head = models.BinaryField(_("first bytes of the body"), blank=True, default=b"")
    headers_head = models.TextField(_("first bytes of the headers"), blank=True, default="")
    detail = models.CharField(_("detail"), max_length=300, blank=True, default="")

    class Meta:
        verbose_name = _("refused webhook")
        verbose_name_plural = _("refused webhooks")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "reason", "remote_addr", "window_start"],
                name="refusal_one_row_per_hour",
            )
        ]
        indexes = [models.Index(fields=["window_start"], name="refusal_window")]

    def __str__(self) -> str:
        return f"{self.provider} {self.reason} ×{self.count}"


class WalletAccount(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="wallet",
    )
    currency = models.CharField(_("currency"), max_length=3, default="BRL")
    balance = models.DecimalField(_("balance"), max_digits=14, decimal_places=2, default=ZERO)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("wallet")
        verbose_name_plural = _("wallets")
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="wallet_never_negative")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.balance} {self.currency}"


class LedgerKind(models.TextChoices):
    TOPUP = "topup", _("top-up")
    SPEND = "spend", _("spend")
    REFUND = "refund", _("refund")
    ADJUSTMENT = "adjustment", _("adjustment")


class LedgerEntry(models.Model):
    """Append-only movement of a wallet; the account balance is their sum."""

    account = models.ForeignKey(
        WalletAccount, verbose_name=_("wallet"), on_delete=models.PROTECT, related_name="entries"
    )
    kind = models.CharField(_("kind"), max_length=12, choices=LedgerKind.choices)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    balance_after = models.DecimalField(_("balance after"), max_digits=14, decimal_places=2)
    session = models.ForeignKey(
        PaymentSession,
        verbose_name=_("payment session"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger",
    )
    reason = models.TextField(_("reason"), blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session"],
                condition=Q(kind="topup"),
                name="ledger_one_topup_per_session",
            ),
            models.UniqueConstraint(
                fields=["session"],
                condition=Q(kind="spend"),
                name="ledger_one_spend_per_session",
            ),
            models.UniqueConstraint(
                fields=["session"],
                condition=Q(kind="refund"),
                name="ledger_one_refund_per_session",
            ),
            # A session's own adjustment is the reversal of its top-up (refund, chargeback).
            models.UniqueConstraint(
                fields=["session"],
                condition=Q(kind="adjustment"),
                name="ledger_one_reversal_per_session",
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.account_id})"


class PartialStatus(models.TextChoices):
    HELD = "held", _("held for staff")
    ACCEPTED = "accepted", _("accepted")
    REFUNDED = "refunded", _("refunded")


class PartialPayment(models.Model):
    """A payment the provider says arrived short of the price (NOWPayments'
    `partially_paid`): what arrived, in the coin it was paid in, held until staff accept
    it (the session is confirmed) or record its refund (the session is cancelled)."""

    session = models.OneToOneField(
        PaymentSession,
        verbose_name=_("payment session"),
        on_delete=models.PROTECT,
        related_name="partial_payment",
    )
    provider_payment_id = models.CharField(
        _("provider payment id"), max_length=100, blank=True, default=""
    )
    pay_currency = models.CharField(_("paid in"), max_length=20, blank=True, default="")
    pay_amount = models.DecimalField(
        _("amount due"), max_digits=40, decimal_places=18, null=True, blank=True
    )
    actually_paid = models.DecimalField(
        _("amount received"), max_digits=40, decimal_places=18, null=True, blank=True
    )
    pay_address = models.CharField(_("paid to"), max_length=200, blank=True, default="")
    status = models.CharField(
        _("status"), max_length=10, choices=PartialStatus.choices, default=PartialStatus.HELD
    )
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("resolved by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reason = models.TextField(_("reason"), blank=True, default="")

    class Meta:
        verbose_name = _("partial payment")
        verbose_name_plural = _("partial payments")
        indexes = [models.Index(fields=["status", "received_at"], name="partial_status_received")]

    def __str__(self) -> str:
        return f"{self.session.reference} {self.paid_text} {self.pay_currency} ({self.status})"

    @staticmethod
    def _text(value) -> str:
        return "" if value is None else format(value.normalize(), "f")

    @property
    def paid_text(self) -> str:
        return self._text(self.actually_paid)

    @property
    def due_text(self) -> str:
        return self._text(self.pay_amount)

    @property
    def missing_text(self) -> str:
        if self.pay_amount is None or self.actually_paid is None:
            return ""
        return self._text(max(self.pay_amount - self.actually_paid, ZERO))

    @property
    def coin(self) -> str:
        return self.pay_currency.upper()

    @property
    def is_held(self) -> bool:
        """Waiting for staff: not decided, and the session not paid in full meanwhile."""
        return self.status == PartialStatus.HELD and self.session.status not in PAID_STATUSES


class UnmatchedPayment(models.Model):
    """Money a provider says it received for this account that matches no payment session
    (neither its reference nor its provider payment id): kept for staff, who attach it to
    a session (confirming that session) — never dropped."""

    provider = models.CharField(_("provider"), max_length=20, choices=Provider.choices)
    provider_payment_id = models.CharField(_("provider payment id"), max_length=100)
    provider_status = models.CharField(_("provider status"), max_length=40, blank=True, default="")
    state = models.CharField(_("state"), max_length=20, blank=True, default="")
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2, null=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True, default="")
    external_reference = models.CharField(
        _("external reference"), max_length=64, blank=True, default=""
    )
    description = models.CharField(_("description"), max_length=200, blank=True, default="")
    # As far as the provider tells it, masked: never a whole document number or e-mail.
    payer = models.JSONField(_("payer"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    delivery = models.ForeignKey(
        WebhookDelivery,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("first delivery"),
    )
    session = models.ForeignKey(
        PaymentSession,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="unmatched_payments",
        verbose_name=_("attached to"),
    )
    attached_at = models.DateTimeField(_("attached at"), null=True, blank=True)
    attached_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("attached by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reason = models.TextField(_("reason"), blank=True, default="")

    class Meta:
        verbose_name = _("unmatched money")
        verbose_name_plural = _("unmatched money")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_payment_id"], name="unmatched_one_per_payment"
            )
        ]
        indexes = [models.Index(fields=["received_at"], name="unmatched_received")]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_payment_id} {self.amount} {self.currency}"
