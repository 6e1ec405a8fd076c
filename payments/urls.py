from django.urls import path

from payments import apis, webhooks

webhook_urlpatterns = [
    path("mercadopago/", webhooks.mercadopago, name="webhook-mercadopago"),
    path("kiosk/", webhooks.kiosk, name="webhook-kiosk"),
]

api_urlpatterns = [
    path("payment-sessions/", apis.PaymentSessionCreateApi.as_view(), name="api-payment-create"),
    path(
        "payment-sessions/<str:reference>/",
        apis.PaymentSessionDetailApi.as_view(),
        name="api-payment-detail",
    ),
    path("wallet/", apis.WalletApi.as_view(), name="api-wallet"),
]
