"""One JSON error shape for the whole API: {"error": {"code", "message", "details"}}."""

import math

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ConfirmaError


class ApiErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text=_("Stable and machine-readable, e.g. not_found."))
    message = serializers.CharField(help_text=_("For people, already translated."))
    details = serializers.JSONField(
        help_text=_(
            "Specifics: for invalid input, each field with its problems; otherwise what the "
            "error is about (e.g. the reference)."
        )
    )


class ApiErrorSerializer(serializers.Serializer):
    """The one shape of every error the API answers."""

    error = ApiErrorBodySerializer()


ERROR_DESCRIPTIONS = {
    400: _("The request is invalid; details say what is wrong."),
    402: _("Not enough credit in the wallet."),
    403: _("Not logged in, or not allowed to do this."),
    404: _("Not found, or not yours to see."),
    409: _("In conflict with the current state (e.g. an Idempotency-Key already used)."),
    429: _("Too many requests; details.retry_after says in how many seconds to try again."),
    502: _("The payment provider could not be reached; try again later."),
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error answers an operation really gives, to merge into `extend_schema`'s
    responses; each in the one error shape."""
    return {
        code: OpenApiResponse(ApiErrorSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in statuses
    }


def exception_handler(exc, context):
    if isinstance(exc, ConfirmaError):
        body = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
        return Response(body, status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.APIException):
        detail = response.data
        message = detail.get("detail", "") if isinstance(detail, dict) else ""
        details = {} if isinstance(detail, dict) and set(detail) == {"detail"} else detail
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "invalid"
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details = {"retry_after": math.ceil(exc.wait)}
        response.data = {"error": {"code": code, "message": str(message), "details": details}}
    if response.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        response.data["error"]["code"] = "method_not_allowed"
    return response
