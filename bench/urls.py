"""The product's URLs plus the baseline endpoints (only in bench.settings)."""

from django.urls import include, path

from bench import views

urlpatterns = [
    path("bench/insert/", views.insert, name="bench-insert"),
    path("bench/group-send/", views.group_send, name="bench-group-send"),
    path("bench/print/", views.print_enqueue, name="bench-print"),
    path("", include("config.urls")),
]
