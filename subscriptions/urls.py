"""Machine pages under /machines/, plan pages under /billing/, the activation API."""

from django.urls import path

from core.pages import fragment_view
from subscriptions import apis, views

urlpatterns = [
    path("machines/", views.machine_list, name="machines"),
    path("machines/controller/", views.controller, name="machine-controller"),
    path(
        "machines/controller/state/",
        fragment_view(views.controller),
        name="machine-controller-state",
    ),
    path("machines/<slug:code>/", views.machine_page, name="machine"),
    path("machines/<slug:code>/state/", fragment_view(views.machine_page), name="machine-state"),
    path("machines/<slug:code>/start/", views.machine_start, name="machine-start"),
    path("machines/<slug:code>/cancel/", views.machine_cancel, name="machine-cancel"),
    path("billing/", views.plans, name="billing"),
    path("billing/checkout/", views.checkout, name="billing-checkout"),
    path("billing/return/", views.billing_return, name="billing-return"),
    path("billing/return/state/", fragment_view(views.billing_return), name="billing-return-state"),
    path("billing/subscription/", views.my_subscription, name="my-subscription"),
]

api_urlpatterns = [
    path(
        "subscriptions/activations/",
        apis.ActivationApi.as_view(),
        name="api-subscription-activate",
    ),
]
