"""The editor panel's admin URLs, under /admin/tasks/page/ (see ``register_admin_urls``)."""

from django.urls import path

from wagtail_tasks.admin import views

app_name = "wagtail_tasks_admin"

urlpatterns = [
    path("page/<int:page_id>/status/", views.page_tasks_status, name="page_tasks"),
    path(
        "page/<int:page_id>/notifications/<int:notification_id>/retry/",
        views.retry_deliveries,
        name="retry_deliveries",
    ),
    path(
        "page/<int:page_id>/notifications/<int:notification_id>/cancel/",
        views.cancel_notification,
        name="cancel_notification",
    ),
    path("page/<int:page_id>/notify/", views.send_notification, name="send_notification"),
]
