from django.urls import path

from subscriptions import apis, views

urlpatterns = [
    path("", views.machine_list, name="machines"),
    path("controller/", views.controller, name="machine-controller"),
    path("controller/state/", views.controller_state, name="machine-controller-state"),
    path("<slug:code>/", views.machine_page, name="machine"),
    path("<slug:code>/state/", views.machine_state, name="machine-state"),
    path("<slug:code>/start/", views.machine_start, name="machine-start"),
    path("<slug:code>/cancel/", views.machine_cancel, name="machine-cancel"),
]

api_urlpatterns = [
    path(
        "subscriptions/activations/",
        apis.ActivationApi.as_view(),
        name="api-subscription-activate",
    ),
]
