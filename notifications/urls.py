from django.urls import path

from core.pages import fragment_view
from notifications import views

urlpatterns = [
    path("activity/", views.activity, name="activity"),
    path("activity/list/", fragment_view(views.activity), name="activity-list"),
]

api_urlpatterns = []
