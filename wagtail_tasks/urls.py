"""Public URLs: ``path("subscriptions/", include("wagtail_tasks.urls"))`` in your urlconf."""

from django.urls import path

from wagtail_tasks.notifications import views

app_name = "wagtail_tasks"

urlpatterns = [
    path("subscribe/", views.subscribe, name="subscribe"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
