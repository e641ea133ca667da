"""The dashboard panel: how much background work is running, queued, failed or stuck.

One aggregate query whatever the number of rows; each count links into the Background tasks
listing filtered to the same rows.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from wagtail.admin.ui.components import Component

from wagtail_tasks.admin.tasks_area import (
    RECENTLY_FAILED,
    STUCK,
    recently_failed_q,
    stuck_cutoff,
    user_can_view,
)
from wagtail_tasks.models import TaskRecord, TaskStatus

INDEX_URL_NAME = "wagtail_tasks_tasks:index"


def task_counts(now=None) -> dict[str, int]:
    """Running, queued, failed in the last 24 hours and stuck rows, in one query."""
    now = now or timezone.now()
    stuck = TaskRecord.objects.stuck(stuck_cutoff(now)).values("pk")
    return TaskRecord.objects.aggregate(
        running=Count("pk", filter=Q(status=TaskStatus.RUNNING)),
        queued=Count("pk", filter=Q(status=TaskStatus.QUEUED)),
        failed=Count("pk", filter=recently_failed_q(now)),
        stuck=Count("pk", filter=Q(pk__in=stuck)),
    )


class TasksDashboardPanel(Component):
    name = "wagtail_tasks"
    template_name = "wagtail_tasks/admin/dashboard_panel.html"
    order = 250

    def get_context_data(self, parent_context: Any = None) -> dict[str, Any]:
        counts = task_counts()
        index_url = reverse(INDEX_URL_NAME)

        def link(status: str) -> str:
            return f"{index_url}?{urlencode({'status': status})}"

        return {
            "index_url": index_url,
            "items": [
                {
                    "key": "running",
                    "label": _("Running"),
                    "count": counts["running"],
                    "url": link(TaskStatus.RUNNING),
                },
                {
                    "key": "queued",
                    "label": _("Queued"),
                    "count": counts["queued"],
                    "url": link(TaskStatus.QUEUED),
                },
                {
                    "key": "failed",
                    "label": _("Failed in the last 24 hours"),
                    "count": counts["failed"],
                    "url": link(RECENTLY_FAILED),
                },
                {"key": "stuck", "label": _("Stuck"), "count": counts["stuck"], "url": link(STUCK)},
            ],
        }


def add_panel(request, panels: list) -> None:
    """``construct_homepage_panels``: only for users who may see the Background tasks area."""
    if user_can_view(request.user):
        panels.append(TasksDashboardPanel())
