from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import error_responses
from core.throttling import ScopedRateThrottle
from orders.parsers import StrictMultiPartParser
from orders.services import order_payload, order_reject, order_verify, proof_submit


class ProofUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="JPEG, PNG, WebP or PDF; decided from the content.")
    method = serializers.CharField(max_length=10)


OrderOut = inline_serializer(
    "OrderState",
    {
        "order": serializers.IntegerField(),
        "status": serializers.CharField(),
        "table": serializers.CharField(),
        "total": serializers.DecimalField(12, 2),
        "currency": serializers.CharField(),
        "method": serializers.CharField(),
    },
)


class ProofUploadApi(APIView):
    """A waiter uploads the transfer receipt of a delivered order (multipart)."""

    parser_classes = [StrictMultiPartParser]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "proof_upload"

    @extend_schema(
        request={"multipart/form-data": ProofUploadSerializer},
        responses={201: dict, **error_responses(400, 403, 404, 429)},
    )
    def post(self, request, order_id: int):
        data = ProofUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proof = proof_submit(
            order_id=order_id,
            upload=data.validated_data["file"],
            method=data.validated_data["method"],
            actor=request.user,
        )
        return Response(
            {"proof": proof.pk, "attempt": proof.attempt, "order": order_payload(proof.order)},
            status=201,
        )


class VerifyApi(APIView):
    """A cashier approves the order's proof: the payment is confirmed, the order paid."""

    @extend_schema(request=None, responses={200: OrderOut, **error_responses(400, 403, 404)})
    def post(self, request, order_id: int):
        return Response(order_payload(order_verify(order_id=order_id, cashier=request.user)))


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000)


class RejectApi(APIView):
    """A cashier rejects the proof with a reason; the order goes back to delivered."""

    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        request=RejectSerializer, responses={200: OrderOut, **error_responses(400, 403, 404)}
    )
    def post(self, request, order_id: int):
        data = RejectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = order_reject(
            order_id=order_id, cashier=request.user, reason=data.validated_data["reason"]
        )
        return Response(order_payload(order))
