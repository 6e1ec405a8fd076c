from django.urls import path

from payments import apis, views, webhooks

webhook_urlpatterns = [
    path("mercadopago/", webhooks.mercadopago, name="webhook-mercadopago"),
    path("kiosk/", webhooks.kiosk, name="webhook-kiosk"),
    path("click/prepare/", webhooks.click_prepare, name="webhook-click-prepare"),
    path("click/complete/", webhooks.click_complete, name="webhook-click-complete"),
    path("nowpayments/", webhooks.nowpayments, name="webhook-nowpayments"),
    path("coinbase/", webhooks.coinbase, name="webhook-coinbase"),
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

page_urlpatterns = [
    path("", views.payments_home, name="payments"),
    path("topup/", views.topup, name="payments-topup"),
    path("<str:reference>/", views.payment_detail, name="payment-detail"),
    path("<str:reference>/status/", views.payment_status, name="payment-status"),
    path("<str:reference>/simulate/", views.simulate, name="payment-simulate"),
]
