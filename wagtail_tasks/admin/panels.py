"""``TasksPanel``: the background work about a page, in its editor, refreshed while it runs.

Add it to a page type's edit handler, for example as a tab of its own::

    edit_handler = TabbedInterface([
        ObjectList(content_panels, heading="Content"),
        ObjectList(promote_panels, heading="Promote"),
        ObjectList([TasksPanel()], heading="Tasks"),
    ])

It renders no form field: the editor form, its unsaved-changes warning and autosave never see
it. Its actions are links to confirmation pages outside the editor form.
"""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import Panel

from wagtail_tasks.admin.page_tasks import PageTasks, page_tasks

BODY_TEMPLATE = "wagtail_tasks/admin/tasks_panel_body.html"


def render_body(tasks: PageTasks, request: Any = None) -> str:
    """The panel's body: what the JSON endpoint sends and the controller swaps in."""
    return render_to_string(BODY_TEMPLATE, {"tasks": tasks, "page": tasks.page}, request=request)


def user_can_see_tasks(page: Any, user: Any) -> bool:
    return bool(user and page.permissions_for_user(user).can_edit())


class TasksPanel(Panel):
    """The page's notifications (progress, failures, time left) and every other tracked task."""

    def __init__(self, heading: Any = "", **kwargs: Any) -> None:
        super().__init__(heading=heading or _("Background tasks"), **kwargs)

    @property
    def clean_name(self) -> str:
        return super().clean_name or "tasks"

    class BoundPanel(Panel.BoundPanel):
        template_name = "wagtail_tasks/admin/tasks_panel.html"

        class Media:
            js = ["wagtail_tasks/js/tasks-panel.js"]
            css = {"all": ["wagtail_tasks/css/tasks-panel.css"]}

        def is_shown(self) -> bool:
            # Nothing to show before the page exists; nothing for those who cannot edit it.
            page = self.instance
            if page is None or page.pk is None or self.request is None:
                return False
            return user_can_see_tasks(page, self.request.user)

        def get_context_data(self, parent_context: Any = None) -> dict[str, Any]:
            context = super().get_context_data(parent_context)
            tasks = page_tasks(self.instance)
            context.update(
                tasks=tasks,
                page=self.instance,
                body=render_body(tasks, self.request),
                status_url=reverse("wagtail_tasks_admin:page_tasks", args=[self.instance.pk]),
            )
            return context


def find_tasks_tab(model: type) -> str | None:
    """The tab identifier (``#tab-<identifier>``) holding a ``TasksPanel`` in a page type's
    edit handler, "" if it is there but not in a tab, or None if the page type has none."""
    get_edit_handler = getattr(model, "get_edit_handler", None)
    if get_edit_handler is None:
        return None
    handler = get_edit_handler()

    def contains(panel: Panel) -> bool:
        if isinstance(panel, TasksPanel):
            return True
        return any(contains(child) for child in getattr(panel, "children", ()))

    if not contains(handler):
        return None
    for child, identifier in zip(
        getattr(handler, "children", ()), getattr(handler, "child_identifiers", ()), strict=False
    ):
        if contains(child):
            return identifier
    return ""
