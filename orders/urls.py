from django.urls import path

from orders import apis, views

urlpatterns = [
    path("cashier/", views.cashier_dashboard, name="cashier"),
    path("cashier/<int:order_id>/<str:decision>/", views.cashier_decide, name="cashier-decide"),
    path("waiter/", views.waiter_page, name="waiter"),
    path("waiter/new/", views.waiter_new_order, name="waiter-new-order"),
    path("waiter/<int:order_id>/proof/", views.waiter_upload, name="waiter-upload"),
    path("orders/<int:order_id>/step/<str:to>/", views.order_step, name="order-step"),
    path("kitchen/", views.kitchen_board, name="kitchen"),
    path("orders/proofs/<int:proof_id>/file/", views.proof_file, name="proof-file"),
]

api_urlpatterns = [
    path("orders/<int:order_id>/proof/", apis.ProofUploadApi.as_view(), name="api-order-proof"),
    path("orders/<int:order_id>/verify/", apis.VerifyApi.as_view(), name="api-order-verify"),
    path("orders/<int:order_id>/reject/", apis.RejectApi.as_view(), name="api-order-reject"),
]
