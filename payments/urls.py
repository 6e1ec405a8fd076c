"""Provider webhooks under /webhooks/, customer pages under /payments/, the payment API."""

from django.urls import path

from core.pages import fragment_view
from payments import apis, views
from payments.models import Provider
from payments.webhooks import endpoint_view

WEBHOOKS = (  # (provider, path under /webhooks/, URL name)
    (Provider.MERCADOPAGO, "mercadopago", "webhook-mercadopago"),
    (Provider.KIOSK, "kiosk", "webhook-kiosk"),
    (Provider.CLICK, "click/prepare", "webhook-click-prepare"),
    (Provider.CLICK, "click/complete", "webhook-click-complete"),
    (Provider.NOWPAYMENTS, "nowpayments", "webhook-nowpayments"),
    (Provider.COINBASE, "coinbase", "webhook-coinbase"),
)
_webhook_urlpatterns = [
    path(f"webhooks/{endpoint}/", endpoint_view(provider, endpoint), name=name)
    for provider, endpoint, name in WEBHOOKS
]

urlpatterns = [
    *_webhook_urlpatterns,
    path("payments/", views.payments_home, name="payments"),
    path("payments/topup/", views.topup, name="payments-topup"),
    path("payments/<reference:reference>/", views.payment_detail, name="payment-detail"),
    path(
        "payments/<reference:reference>/status/",
        fragment_view(views.payment_detail),
        name="payment-status",
    ),
    path("payments/<reference:reference>/simulate/", views.simulate, name="payment-simulate"),
]

api_urlpatterns = [
    path("payment-sessions/", apis.PaymentSessionCreateApi.as_view(), name="api-payment-create"),
    path(
        "payment-sessions/<reference:reference>/",
        apis.PaymentSessionDetailApi.as_view(),
        name="api-payment-detail",
    ),
    path("wallet/", apis.WalletApi.as_view(), name="api-wallet"),
]
