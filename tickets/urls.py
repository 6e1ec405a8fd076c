from django.urls import path

from core.pages import fragment_view
from tickets import apis, views

urlpatterns = [
    path("kiosk/", views.kiosk_home, name="kiosk"),
    path("kiosk/service/<int:service_id>/", views.kiosk_service, name="kiosk-service"),
    path("kiosk/wait/<reference:reference>/", views.kiosk_wait, name="kiosk-wait"),
    path(
        "kiosk/wait/<reference:reference>/state/",
        fragment_view(views.kiosk_wait),
        name="kiosk-wait-state",
    ),
    path("kiosk/wait/<reference:reference>/simulate/", views.kiosk_simulate, name="kiosk-simulate"),
    path("operator/", views.operator_panel, name="operator"),
    path("operator/panel/", fragment_view(views.operator_panel), name="operator-panel"),
    path("operator/desk/", views.operator_desk, name="operator-desk"),
    path("operator/call/", views.operator_call, name="operator-call"),
    path(
        "operator/ticket/<int:ticket_id>/<str:action>/",
        views.operator_ticket,
        name="operator-ticket",
    ),
    path("display/", views.display_board, name="display"),
    path("display/list/", fragment_view(views.display_board), name="display-list"),
    path("integration/", views.integration_page, name="integration"),
    path("integration/fix/", views.integration_fix, name="integration-fix"),
]

api_urlpatterns = [
    path("tickets/", apis.TicketListApi.as_view(), name="api-tickets"),
    path("integration/test/", apis.integration_test, name="api-integration-test"),
]
