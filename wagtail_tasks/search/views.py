"""The admin's "Rebuild search index" action: a confirmation page, then a POST that enqueues
the rebuild in the background (instead of ``manage.py update_index``)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.search.policy import request_rebuild
from wagtail_tasks.search.tasks import KIND_REBUILD

app_name = "wagtail_tasks_search"


def can_rebuild(user) -> bool:
    return bool(
        user.is_active and (user.is_superuser or user.has_perm("wagtail_tasks.change_taskrecord"))
    )


@require_http_methods(["GET", "POST"])
def rebuild(request: HttpRequest) -> HttpResponse:
    if not can_rebuild(request.user):
        # A plain 403 like every admin endpoint of ours (PermissionDenied would be turned
        # into a redirect to the dashboard by Wagtail's admin).
        return HttpResponseForbidden(_("You may not rebuild the search index."))
    if request.method == "POST":
        record, created = request_rebuild(requested_by=request.user)
        if created:
            messages.success(request, _("The search index is being rebuilt in the background."))
        else:
            messages.info(request, _("A rebuild of the search index is already in progress."))
        return redirect("wagtail_tasks_search:rebuild")
    latest = TaskRecord.objects.filter(kind=KIND_REBUILD).order_by("-pk").first()
    return TemplateResponse(
        request,
        "wagtail_tasks/search/rebuild.html",
        {
            "latest": latest,
            "in_progress": latest is not None
            and latest.status in (TaskStatus.QUEUED, TaskStatus.RUNNING),
        },
    )


urlpatterns = [path("rebuild/", rebuild, name="rebuild")]
