"""The tickets API's shapes: the filters it takes and the ticket it returns."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.text import text_storable
from tickets.cpf import name_mask
from tickets.models import Service, Ticket, TicketStatus


class TicketFilterSerializer(serializers.Serializer):
    """`status` is one status or several, comma-separated or repeated."""

    status = serializers.ListField(child=serializers.CharField(), required=False)
    service = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    day = serializers.DateField(required=False, input_formats=["iso-8601"])
    desk = serializers.CharField(required=False, max_length=20)

    def validate_status(self, values: list[str]) -> list[str]:
        wanted = [v.strip() for value in values for v in value.split(",") if v.strip()]
        unknown = sorted(set(wanted) - set(TicketStatus.values))
        if unknown or not wanted:
            raise serializers.ValidationError(
                _("Unknown status %(value)s: use one of %(choices)s.")
                % {
                    "value": ", ".join(repr(v[:30]) for v in unknown) or "''",
                    "choices": ", ".join(TicketStatus.values),
                }
            )
        return wanted

    def validate_service(self, value: int) -> int:
        if not Service.objects.filter(pk=value).exists():
            raise serializers.ValidationError(_("There is no service %(id)s.") % {"id": value})
        return value

    def validate_desk(self, value: str) -> str:
        if not text_storable(value) or not value.isprintable():
            raise serializers.ValidationError(_("A desk is letters, digits and spaces."))
        return value.strip()


class TicketSerializer(serializers.ModelSerializer):
    code = serializers.CharField(read_only=True)
    service_prefix = serializers.CharField(source="service.prefix", read_only=True)
    service_name = serializers.CharField(source="service.name", read_only=True)
    reference = serializers.CharField(source="payment_session.reference", read_only=True)
    customer_name = serializers.SerializerMethodField()
    reprint_marked = serializers.BooleanField(
        read_only=True,
        help_text=_("Printing was interrupted: the customer may hold two slips with this number."),
    )

    class Meta:
        model = Ticket
        fields = [
            "id",
            "code",
            "number",
            "day",
            "status",
            "service",
            "service_prefix",
            "service_name",
            "desk",
            "operator",
            "customer_name",
            "reference",
            "reprint_marked",
            "paid_at",
            "printed_at",
            "called_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(help_text=_("First name and last initial.")))
    def get_customer_name(self, ticket: Ticket) -> str:
        return name_mask(ticket.customer_name)
