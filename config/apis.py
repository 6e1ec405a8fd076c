from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from config.asyncapi import asyncapi_document
from config.health import integration_status
from core.api import error_responses
from core.roles import RolePermission, user_roles
from notifications.audiences import user_audiences


class MeApi(APIView):
    """The authenticated user, their roles and the event audiences they receive."""

    @extend_schema(
        responses={
            200: inline_serializer(
                "Me",
                {
                    "id": serializers.IntegerField(),
                    "username": serializers.CharField(),
                    "roles": serializers.ListField(child=serializers.CharField()),
                    "audiences": serializers.ListField(child=serializers.CharField()),
                },
            ),
            **error_responses(403),
        }
    )
    def get(self, request):
        user = request.user
        return Response(
            {
                "id": user.pk,
                "username": user.get_username(),
                "roles": sorted(user_roles(user)),
                "audiences": user_audiences(user),
            }
        )


class EventCatalogueApi(APIView):
    """The AsyncAPI document of the events on /ws/events/ (config/event_catalogue.py);
    public, like the OpenAPI schema."""

    permission_classes = [AllowAny]
    authentication_classes = []
    renderer_classes = [JSONRenderer]

    @extend_schema(exclude=True)
    def get(self, request):
        return Response(asyncapi_document())


class IntegrationStatusApi(APIView):
    """The integrations at a glance (what the staff health page shows): paid kiosk
    sessions vs tickets at the top level; per purpose and provider conversion and
    payment → fulfilled times; webhooks by status; open gaps; printers; the worker."""

    permission_classes = [RolePermission.of("staff")]

    @extend_schema(responses={200: dict, **error_responses(403)})
    def get(self, request):
        return Response(integration_status())
