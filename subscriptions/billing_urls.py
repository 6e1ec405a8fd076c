from django.urls import path

from subscriptions import views

urlpatterns = [
    path("", views.plans, name="billing"),
    path("checkout/", views.checkout, name="billing-checkout"),
    path("return/", views.billing_return, name="billing-return"),
    path("return/state/", views.billing_return_state, name="billing-return-state"),
    path("subscription/", views.my_subscription, name="my-subscription"),
]
