"""One JSON error shape for the whole API: {"error": {"code", "message", "details"}}."""

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import ConfirmaError


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
        response.data = {"error": {"code": code, "message": str(message), "details": details}}
    if response.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        response.data["error"]["code"] = "method_not_allowed"
    return response
