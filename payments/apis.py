from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import error_responses
from core.roles import has_role
from core.throttling import ScopedRateThrottle
from notifications.audiences import audience_payment
from notifications.errors import InvalidToken
from notifications.tokens import audience_token_create, audience_token_read
from payments.errors import PaymentNotFound, UnknownPurpose
from payments.models import PaymentSession
from payments.registry import purpose_get
from payments.selectors import payment_session_get, wallet_entries_recent
from payments.serializers import (
    PaymentSessionCreateSerializer,
    PaymentSessionSerializer,
    WalletSerializer,
)
from payments.services import payment_session_create, wallet_account_get

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description=_("1-64 characters; the same key with the same body returns the same session."),
)


def payment_token(session: PaymentSession) -> str:
    """Lets whoever created the session (e.g. an anonymous kiosk) follow it."""
    return audience_token_create(
        audiences=[audience_payment(session.reference)], ttl_seconds=2 * 24 * 3600
    )


class PaymentSessionCreateApi(APIView):
    """Create a payment session (idempotent by the Idempotency-Key header)."""

    permission_classes = [permissions.AllowAny]  # each purpose decides who may pay
    # Each new session creates a payment at the provider.
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "payment_session_create"

    @extend_schema(
        request=PaymentSessionCreateSerializer,
        responses={
            200: PaymentSessionSerializer,
            201: PaymentSessionSerializer,
            **error_responses(400, 402, 403, 404, 409, 429, 502),
        },
        parameters=[IDEMPOTENCY_HEADER],
    )
    def post(self, request):
        serializer = PaymentSessionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not purpose_get(data["purpose"]).public:
            raise UnknownPurpose(f"Unknown purpose: {data['purpose'][:40]}")
        result = payment_session_create(
            user=request.user,
            idempotency_key=request.headers.get("Idempotency-Key", ""),
            purpose=data["purpose"],
            provider=data["provider"],
            amount=data.get("amount"),
            currency=data.get("currency"),
            params=data.get("params"),
            coupon_code=data.get("coupon") or None,
            payer_email=data.get("payer_email", ""),
        )
        body = PaymentSessionSerializer(
            result.session, context={"token": payment_token(result.session)}
        ).data
        return Response(body, status=201 if result.created else 200)


class PaymentSessionDetailApi(APIView):
    """The state of one payment session, for its owner, staff, or the holder of its token."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        responses={200: PaymentSessionSerializer, **error_responses(404)},
        parameters=[OpenApiParameter("token", str, OpenApiParameter.QUERY, required=False)],
    )
    def get(self, request, reference: str):
        session = payment_session_get(reference=reference)
        if session is None or not self._may_see(request, session):
            raise PaymentNotFound(reference)
        return Response(PaymentSessionSerializer(session).data)

    @staticmethod
    def _may_see(request, session) -> bool:
        user = request.user
        if user.is_authenticated and (session.user_id == user.pk or has_role(user, "staff")):
            return True
        token = request.query_params.get("token") or request.headers.get("X-Payment-Token")
        if not token:
            return False
        try:
            return audience_payment(session.reference) in audience_token_read(token)
        except InvalidToken:
            return False


class WalletApi(APIView):
    """The logged-in user's credit balance and latest ledger entries."""

    @extend_schema(responses={200: WalletSerializer, **error_responses(403)})
    def get(self, request):
        account = wallet_account_get(user=request.user)
        entries = wallet_entries_recent(account=account, limit=50)
        return Response(
            WalletSerializer(
                {"balance": account.balance, "currency": account.currency, "entries": entries}
            ).data
        )
