from rest_framework import serializers

from payments.models import LedgerEntry, PaymentSession, Provider


class PaymentSessionCreateSerializer(serializers.Serializer):
    purpose = serializers.CharField(max_length=40)
    provider = serializers.ChoiceField(choices=Provider.choices)
    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, required=False, allow_null=True, min_value=0
    )
    currency = serializers.CharField(max_length=3, min_length=3, required=False, allow_null=True)
    params = serializers.DictField(required=False, default=dict)
    coupon = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)
    payer_email = serializers.EmailField(required=False, allow_blank=True)


class PaymentSessionSerializer(serializers.ModelSerializer):
    coupon = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    fulfilled = serializers.SerializerMethodField()
    token = serializers.SerializerMethodField(
        help_text="Signed token for GET and /ws/events/ (audience payment:<reference>)."
    )

    class Meta:
        model = PaymentSession
        fields = [
            "reference",
            "purpose",
            "provider",
            "status",
            "amount",
            "original_amount",
            "discount",
            "coupon",
            "currency",
            "expires_at",
            "created_at",
            "completed_at",
            "fulfilled",
            "provider_data",
            "token",
        ]

    def get_fulfilled(self, session) -> bool:
        return session.fulfilled_at is not None

    def get_token(self, session) -> str | None:
        return self.context.get("token")


class LedgerEntrySerializer(serializers.ModelSerializer):
    reference = serializers.CharField(source="session.reference", default=None, read_only=True)

    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "amount", "balance_after", "reference", "reason", "created_at"]


class WalletSerializer(serializers.Serializer):
    balance = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    entries = LedgerEntrySerializer(many=True)
