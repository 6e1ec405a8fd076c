from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.authtoken.models import Token
from rest_framework.generics import ListAPIView
from rest_framework.pagination import LimitOffsetPagination

from core.api import error_responses
from core.errors import ConfirmaError
from core.roles import RolePermission, has_role
from core.text import text_storable
from tickets.models import TicketStatus
from tickets.selectors import tickets_list
from tickets.selftest import integration_self_test
from tickets.serializers import TicketFilterSerializer, TicketSerializer


class InvalidFilter(ConfirmaError):
    code = "invalid_filter"


class TicketPagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 500


class TicketListApi(ListAPIView):
    """Tickets in queue order (paid first), filtered by status, service, day and desk;
    for operators and staff."""

    permission_classes = [RolePermission.of("operator")]
    serializer_class = TicketSerializer
    pagination_class = TicketPagination

    def get_queryset(self):
        params = self.request.query_params
        raw = {key: params[key] for key in ("service", "day", "desk") if key in params}
        if "status" in params:
            raw["status"] = params.getlist("status")
        filters = TicketFilterSerializer(data=raw)
        if not filters.is_valid():
            problems = "; ".join(
                f"{field}: {' '.join(str(e) for e in errors)}"
                for field, errors in filters.errors.items()
            )
            raise InvalidFilter(
                _("Invalid filter (%(problems)s).") % {"problems": problems},
                **{field: [str(e) for e in errors] for field, errors in filters.errors.items()},
            )
        data = filters.validated_data
        return tickets_list(
            statuses=data.get("status"),
            service_id=data.get("service"),
            day=data.get("day"),
            desk=data.get("desk"),
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                many=True,
                explode=False,
                enum=TicketStatus.values,
                description=_("One status or several, comma-separated (in_queue,called)."),
            ),
            OpenApiParameter(
                "service", OpenApiTypes.INT, description=_("A service's id (its tickets only).")
            ),
            OpenApiParameter(
                "day",
                OpenApiTypes.DATE,
                description=_("The local day the ticket was numbered for (YYYY-MM-DD)."),
            ),
            OpenApiParameter("desk", OpenApiTypes.STR, description=_("The desk it was called to.")),
        ],
        responses={200: TicketSerializer(many=True), **error_responses(400, 403)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


def _csrf_failure(request):
    """Like DRF: a session-authenticated POST must carry the CSRF token."""
    check = CsrfViewMiddleware(lambda r: None)
    check.process_request(request)
    return check.process_view(request, None, (), {})


async def _staff_user(request):
    """The staff user behind a `Token` header or a session (with CSRF); else None."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Token "):
        key = header[6:]
        token = None
        if text_storable(key):
            token = await Token.objects.select_related("user").filter(key=key).afirst()
        user = token.user if token else None
    else:
        user = await request.auser()
        if user.is_authenticated and _csrf_failure(request) is not None:
            return None
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    is_staff = await sync_to_async(has_role)(user, "staff")
    return user if is_staff else None


def _run_self_test(base_url: str) -> dict:
    close_old_connections()
    try:
        return integration_self_test(base_url=base_url)
    finally:
        close_old_connections()


@csrf_exempt
@require_POST
async def integration_test(request):
    """POST /api/integration/test/ (staff): a real end-to-end kiosk payment, step by step.

    Async, and run in a thread of its own: it waits on the webhook, the worker and the
    printer without holding the thread that serves Django's other sync views."""
    if await _staff_user(request) is None:
        return JsonResponse(
            {"error": {"code": "permission_denied", "message": "Staff only."}}, status=403
        )
    result = await sync_to_async(_run_self_test, thread_sensitive=False)(settings.PUBLIC_BASE_URL)
    return JsonResponse(result, status=200 if result["ok"] else 502)
