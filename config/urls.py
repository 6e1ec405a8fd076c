"""The site's URLs: the pages that compose the apps, then every app wired the same way.

Each app's `urls.py` holds `urlpatterns` (its pages, as paths from the site root) and
`api_urlpatterns` (its API, mounted under /api/)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import apis, views
from notifications import urls as notification_urls
from orders import urls as order_urls
from payments import urls as payment_urls
from subscriptions import urls as subscription_urls
from tickets import urls as ticket_urls

APPS = (payment_urls, subscription_urls, ticket_urls, order_urls, notification_urls)

api_urlpatterns = [
    path("me/", apis.MeApi.as_view(), name="api-me"),
    path("integration/status/", apis.IntegrationStatusApi.as_view(), name="api-integration"),
    *[path("", include(app.api_urlpatterns)) for app in APPS],
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("events/asyncapi.json", apis.EventCatalogueApi.as_view(), name="api-events-asyncapi"),
]

handler404 = views.page_not_found

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("operations/", views.operations, name="operations"),
    path("operations/repair/", views.operations_repair, name="operations-repair"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    *[path("", include(app.urlpatterns)) for app in APPS],
    path("api/", include(api_urlpatterns)),
]
