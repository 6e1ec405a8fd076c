"""The subscriptions API: staff activate a user from a script, as the admin does."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import error_responses
from core.roles import RolePermission
from subscriptions.selectors import payment_session_by_reference, plan_by_code, user_find
from subscriptions.services.plans import MAX_MANUAL_DAYS, subscription_activate_manually


class ActivationSerializer(serializers.Serializer):
    user = serializers.CharField(
        required=False,
        max_length=254,
        help_text=_("User id, username or e-mail. May be left out with payment_session."),
    )
    plan = serializers.CharField(
        required=False,
        max_length=40,
        help_text=_("Plan code. Default: the plan the payment session paid for."),
    )
    days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_MANUAL_DAYS,
        help_text=_("Default: the plan's period."),
    )
    reason = serializers.CharField(max_length=2000, help_text=_("Why; kept in the audit."))
    payment_session = serializers.CharField(
        required=False,
        max_length=64,
        help_text=_(
            "Reference of the user's completed plan payment this activation stands for; it "
            "then counts as delivered and never activates again."
        ),
    )

    def validate_user(self, value):
        user = user_find(value)
        if user is None:
            raise serializers.ValidationError(_("There is no such user."))
        return user

    def validate_plan(self, value):
        plan = plan_by_code(value)
        if plan is None:
            raise serializers.ValidationError(_("There is no such plan."))
        return plan

    def validate_payment_session(self, value):
        session = payment_session_by_reference(value)
        if session is None:
            raise serializers.ValidationError(_("There is no payment with this reference."))
        return session

    def validate(self, data):
        if "user" not in data and "payment_session" not in data:
            raise serializers.ValidationError({"user": [_("Give a user or a payment_session.")]})
        if "plan" not in data and "payment_session" not in data:
            raise serializers.ValidationError({"plan": [_("This field is required.")]})
        return data


class SubscriptionOutSerializer(serializers.Serializer):
    user = serializers.IntegerField(source="user_id")
    status = serializers.CharField()
    plan = serializers.CharField(source="plan.code")
    tier = serializers.CharField()
    current_period_start = serializers.DateTimeField()
    current_period_end = serializers.DateTimeField()
    change = serializers.CharField(
        help_text=_(
            "What the activation did: activated, renewed, upgraded, downgraded, plan_changed."
        )
    )
    event = serializers.IntegerField(help_text=_("The audit event's id."))


class ActivationApi(APIView):
    """Activate a user's plan by hand (staff only): the same service, rules and audit as
    the admin's manual activation. Works for users who never had a subscription."""

    permission_classes = [RolePermission.of("staff")]
    parser_classes = [JSONParser]

    @extend_schema(
        request=ActivationSerializer,
        responses={201: SubscriptionOutSerializer, **error_responses(400, 403)},
        examples=[
            OpenApiExample(
                "A user who paid and was not activated",
                value={"payment_session": "ps_…", "reason": "paid, activation failed"},
                request_only=True,
            ),
            OpenApiExample(
                "A user without any payment",
                value={"user": "ana@example.com", "plan": "pro-uzs", "days": 30, "reason": "…"},
                request_only=True,
            ),
        ],
    )
    def post(self, request):
        data = ActivationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        subscription = subscription_activate_manually(
            user=fields.get("user"),
            plan=fields.get("plan"),
            days=fields.get("days"),
            actor=request.user,
            reason=fields["reason"],
            payment_session=fields.get("payment_session"),
        )
        event = subscription.activation_event
        subscription.change = event.data.get("change", "")
        subscription.event = event.pk
        return Response(SubscriptionOutSerializer(subscription).data, status=201)
