from django.urls import path

from notifications import views

urlpatterns = [
    path("activity/", views.activity, name="activity"),
    path("activity/list/", views.activity_fragment, name="activity-list"),
]

api_urlpatterns = []
