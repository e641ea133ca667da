"""The "Background tasks" area: a read-only listing and detail view of tracking rows, and retry.

Built on Wagtail's generic model views. Viewing needs ``wagtail_tasks.view_taskrecord`` (or
``change_taskrecord``, which implies it, as in Django's admin); retrying needs
``wagtail_tasks.change_taskrecord``. A signed-in admin user without them gets a 403.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import django_filters
from django.conf import settings
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views import View
from django.views.defaults import permission_denied
from wagtail.admin import messages
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.ui.tables import Column, DateColumn, StatusTagColumn, TitleColumn, UserColumn
from wagtail.admin.utils import get_valid_next_url_from_request
from wagtail.admin.views.generic import IndexView, InspectView
from wagtail.admin.views.generic.permissions import PermissionCheckedMixin
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.admin.widgets import HeaderButton
from wagtail.models import Site
from wagtail.permissions import policy_registry

from wagtail_tasks import conf, kinds, tracking
from wagtail_tasks.models import TaskRecord, TaskStatus

VIEW = "view"
CHANGE = "change"
VIEW_PERMISSIONS = (VIEW, CHANGE)  # change implies view, as in Django's admin

# Status filter choices beyond the model's statuses (also the dashboard panel's links).
STUCK = "stuck"
RECENTLY_FAILED = "failed_24h"
RECENT = timedelta(hours=24)

RETRY_FORM_ID = "wagtail-tasks-retry-form"


def stuck_cutoff(now: datetime | None = None) -> datetime:
    """Heartbeats older than this mean the work is stuck (``WAGTAIL_TASKS_STUCK_AFTER``)."""
    return (now or timezone.now()) - timedelta(seconds=conf.get("WAGTAIL_TASKS_STUCK_AFTER"))


def recently_failed_q(now: datetime | None = None) -> Q:
    return Q(status=TaskStatus.FAILED, finished_at__gte=(now or timezone.now()) - RECENT)


def user_can_view(user: Any) -> bool:
    return policy_registry.get_by_type(TaskRecord).user_has_any_permission(user, VIEW_PERMISSIONS)


def user_can_retry(user: Any) -> bool:
    return policy_registry.get_by_type(TaskRecord).user_has_permission(user, CHANGE)


def can_be_retried(record: TaskRecord) -> bool:
    return record.status in tracking.RETRYABLE_STATUSES and bool(record.task_path)


# Filters -------------------------------------------------------------------------------------


def kind_choices() -> list[tuple[str, str]]:
    """Every registered kind, and any kind present in the table (a removed feature's rows)."""
    present = TaskRecord.objects.order_by().values_list("kind", flat=True).distinct()
    codes = set(kinds.LABELS) | set(present)
    return sorted(((code, kinds.label_for(code)) for code in codes), key=lambda c: c[1].lower())


def status_choices() -> list[tuple[str, Any]]:
    return [
        *TaskStatus.choices,
        (STUCK, gettext_lazy("Stuck (no heartbeat)")),
        (RECENTLY_FAILED, gettext_lazy("Failed in the last 24 hours")),
    ]


def backend_choices() -> list[tuple[str, str]]:
    present = TaskRecord.objects.order_by().values_list("backend_alias", flat=True).distinct()
    aliases = (set(getattr(settings, "TASKS", {})) | set(present)) - {""}
    return [(alias, alias) for alias in sorted(aliases)]


class TaskRecordFilterSet(WagtailFilterSet):
    kind = django_filters.ChoiceFilter(
        label=gettext_lazy("Kind"), choices=kind_choices, empty_label=gettext_lazy("All kinds")
    )
    status = django_filters.ChoiceFilter(
        label=gettext_lazy("Status"),
        choices=status_choices,
        method="filter_status",
        empty_label=gettext_lazy("Any status"),
    )
    site = django_filters.ModelChoiceFilter(
        label=gettext_lazy("Site"),
        queryset=Site.objects.order_by("hostname", "port"),
        empty_label=gettext_lazy("All sites"),
    )
    backend_alias = django_filters.ChoiceFilter(
        label=gettext_lazy("Backend"),
        choices=backend_choices,
        empty_label=gettext_lazy("All backends"),
    )
    created_at = django_filters.DateFromToRangeFilter(
        label=gettext_lazy("Created"), widget=DateRangePickerWidget
    )

    class Meta:
        model = TaskRecord
        fields = ["kind", "status", "site", "backend_alias", "created_at"]

    def filter_status(self, queryset, name, value):
        if value == STUCK:
            return queryset.filter(pk__in=TaskRecord.objects.stuck(stuck_cutoff()).values("pk"))
        if value == RECENTLY_FAILED:
            return queryset.filter(recently_failed_q())
        return queryset.filter(status=value)


# Columns -------------------------------------------------------------------------------------


def progress_text(record: TaskRecord) -> str:
    if record.progress_total:
        return f"{record.progress_done}/{record.progress_total} ({record.percent}%)"
    if record.progress_done:
        return str(record.progress_done)
    return f"{record.percent}%"


def route_text(record: TaskRecord) -> str:
    return " / ".join(part for part in (record.backend_alias, record.queue_name) if part)


def duration(record: TaskRecord) -> timedelta | None:
    if record.started_at is None:
        return None
    end = record.finished_at or timezone.now()
    return end - record.started_at


class RetryCheckboxColumn(Column):
    """A checkbox, belonging to the retry form below the table, for rows that can be retried."""

    cell_template_name = "wagtail_tasks/admin/tasks/retry_checkbox_cell.html"

    def get_cell_context_data(self, instance, parent_context):
        context = super().get_cell_context_data(instance, parent_context)
        context["can_retry"] = can_be_retried(instance)
        context["form_id"] = RETRY_FORM_ID
        return context


# Views ---------------------------------------------------------------------------------------


class ForbiddenMixin:
    """Answer a signed-in user who lacks the permission with 403, not Wagtail's redirect home."""

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        except PermissionDenied as exc:
            return permission_denied(request, exc)


class TaskIndexView(ForbiddenMixin, IndexView):
    any_permission_required = list(VIEW_PERMISSIONS)
    retry_url_name: str | None = None

    def get_base_queryset(self):
        return super().get_base_queryset().select_related("site", "requested_by")

    @cached_property
    def can_retry(self) -> bool:
        return bool(self.retry_url_name) and self.user_has_permission(CHANGE)

    @cached_property
    def columns(self):
        title_column_class = self._get_title_column_class(TitleColumn)
        columns = [
            title_column_class(
                "kind",
                label=_("Kind"),
                accessor=lambda record: kinds.label_for(record.kind),
                get_url=self.get_inspect_url,
                sort_key="kind",
            ),
            Column("target", label=_("Target"), accessor="target_repr", sort_key="target_repr"),
            StatusTagColumn(
                "status",
                label=_("Status"),
                accessor="get_status_display",
                sort_key="status",
                primary=lambda record: record.status == TaskStatus.FAILED,
            ),
            Column("progress", label=_("Progress"), accessor=progress_text),
            Column("site", label=_("Site"), accessor="site"),
            Column("route", label=_("Backend / queue"), accessor=route_text),
            UserColumn("requested_by", label=_("Requested by"), blank_display_name=_("System")),
            DateColumn("created_at", label=_("Created"), sort_key="created_at"),
            DateColumn("finished_at", label=_("Finished"), sort_key="finished_at"),
        ]
        if self.can_retry:
            columns.insert(0, RetryCheckboxColumn("retry", label=_("Retry")))
        return columns

    @cached_property
    def header_buttons(self):
        from wagtail_tasks.search.views import can_rebuild

        buttons = super().header_buttons
        if can_rebuild(self.request.user):
            buttons.append(
                HeaderButton(
                    _("Rebuild search index"),
                    url=reverse("wagtail_tasks_search:rebuild"),
                    icon_name="search",
                )
            )
        return buttons

    def get_context_data(self, *args, **kwargs):
        context = super().get_context_data(*args, **kwargs)
        context["can_retry"] = self.can_retry
        if self.can_retry:
            context["retry_url"] = reverse(self.retry_url_name)
            context["retry_form_id"] = RETRY_FORM_ID
            context["retry_next"] = self.request.get_full_path()
        return context


class TaskInspectView(ForbiddenMixin, InspectView):
    any_permission_required = list(VIEW_PERMISSIONS)
    retry_url_name: str | None = None
    inspect_url_name: str | None = None

    def get_page_subtitle(self):
        return f"{kinds.label_for(self.object.kind)} #{self.object.pk}"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        record = self.object
        children = list(record.children.order_by("pk"))
        can_retry = bool(self.retry_url_name) and self.user_has_permission(CHANGE)
        context.update(
            {
                "record": record,
                "kind_label": kinds.label_for(record.kind),
                "progress": progress_text(record),
                "route": route_text(record),
                "duration": duration(record),
                "parent_url": self.inspect_url(record.parent_id),
                "parent_label": kinds.label_for(record.parent.kind) if record.parent_id else "",
                "children": [
                    (child, kinds.label_for(child.kind), self.inspect_url(child.pk))
                    for child in children
                ],
                "child_counts": self.count_statuses(children),
                "can_retry": can_retry and can_be_retried(record),
                "retry_url": reverse(self.retry_url_name) if can_retry else None,
            }
        )
        return context

    def inspect_url(self, pk: int | None) -> str | None:
        if pk is None or not self.inspect_url_name:
            return None
        return reverse(self.inspect_url_name, args=(quote(pk),))

    @staticmethod
    def count_statuses(children: list[TaskRecord]) -> list[tuple[str, int]]:
        counts = {label: 0 for _, label in TaskStatus.choices}
        for child in children:
            counts[child.get_status_display()] += 1
        return [(str(label), count) for label, count in counts.items() if count]


class RetryView(ForbiddenMixin, PermissionCheckedMixin, View):
    """POST ``id`` (one or more): enqueue each failed row again with ``tracking.requeue``.

    Rows that cannot be retried (not failed, nothing to run, gone) are reported back in a
    message; they are not errors.
    """

    model = TaskRecord
    permission_required = CHANGE
    http_method_names = ["post"]
    index_url_name: str | None = None

    def post(self, request: HttpRequest) -> HttpResponse:
        ids = [value for value in request.POST.getlist("id") if value.isdigit()]
        retried: list[TaskRecord] = []
        skipped: list[TaskRecord] = []
        with transaction.atomic():
            # The tasks are enqueued once every row is back to QUEUED (requeue uses on_commit).
            for record in TaskRecord.objects.filter(pk__in=ids).order_by("pk"):
                if can_be_retried(record) and tracking.requeue(record):
                    retried.append(record)
                else:
                    skipped.append(record)
        if retried:
            messages.success(
                request,
                ngettext(
                    "%(count)d task was queued again.",
                    "%(count)d tasks were queued again.",
                    len(retried),
                )
                % {"count": len(retried)},
            )
        if skipped:
            names = ", ".join(f"{kinds.label_for(r.kind)} #{r.pk}" for r in skipped)
            messages.warning(
                request, _("Not retried (only failed tasks can be): %(tasks)s") % {"tasks": names}
            )
        if not ids:
            messages.warning(request, _("No tasks were selected."))
        elif not retried and not skipped:
            messages.warning(request, _("The selected tasks no longer exist."))
        return redirect(get_valid_next_url_from_request(request) or reverse(self.index_url_name))


class TaskRecordViewSet(ModelViewSet):
    """Read-only: index, inspect and retry; no create, edit, copy or delete views."""

    model = TaskRecord
    icon = "cogs"
    menu_label = gettext_lazy("Background tasks")
    menu_name = "background-tasks"
    url_prefix = "background-tasks"
    menu_order = 850
    add_to_admin_menu = True
    index_view_class = TaskIndexView
    inspect_view_class = TaskInspectView
    retry_view_class = RetryView
    inspect_view_enabled = True
    index_template_name = "wagtail_tasks/admin/tasks/index.html"
    inspect_template_name = "wagtail_tasks/admin/tasks/inspect.html"
    copy_view_enabled = False
    add_to_reference_index = False
    filterset_class = TaskRecordFilterSet
    search_fields = ["target_repr"]
    search_backend_name = None  # tracking rows are not in the search index: database search
    ordering = ["-created_at", "-pk"]
    list_per_page = 50

    def get_common_view_kwargs(self, **kwargs):
        view_kwargs = super().get_common_view_kwargs(**kwargs)
        for name in ("add_url_name", "edit_url_name", "delete_url_name", "copy_url_name"):
            view_kwargs[name] = None
        for name in ("history_url_name", "usage_url_name"):
            view_kwargs.pop(name, None)
        return view_kwargs

    def get_index_view_kwargs(self, **kwargs):
        return super().get_index_view_kwargs(retry_url_name=self.get_url_name("retry"), **kwargs)

    def get_inspect_view_kwargs(self, **kwargs):
        return super().get_inspect_view_kwargs(retry_url_name=self.get_url_name("retry"), **kwargs)

    @property
    def retry_view(self):
        return self.construct_view(self.retry_view_class)

    def get_urlpatterns(self):
        return [
            path("", self.index_view, name="index"),
            path("results/", self.index_results_view, name="index_results"),
            path("inspect/<int:pk>/", self.inspect_view, name="inspect"),
            path("retry/", self.retry_view, name="retry"),
        ]

    def get_permissions_to_register(self):
        """Only view and change are offered in the group editor: rows are never added by hand."""
        return (
            super()
            .get_permissions_to_register()
            .filter(codename__in=["view_taskrecord", "change_taskrecord"])
        )


def viewset() -> TaskRecordViewSet:
    return TaskRecordViewSet("wagtail_tasks_tasks")
