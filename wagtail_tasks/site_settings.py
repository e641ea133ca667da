"""The "Background tasks" site setting: per site, which task backend each kind of work uses,
and whether publishing notifies subscribers.

Read at call time by :func:`wagtail_tasks.conf.route_for` (so a change takes effect without a
restart). An alias chosen earlier and since removed from ``TASKS`` falls back to the
``WAGTAIL_TASKS`` route with a logged warning, a system check (``wagtail_tasks.W005``) and a
note on the settings form; a publish never fails because of it.
"""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.panels import FieldPanel, MultiFieldPanel
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting

from wagtail_tasks import conf

logger = logging.getLogger(__name__)

# group -> the model field that holds the site's backend alias for it
GROUP_FIELDS = {group: f"{group}_backend" for group in conf.ROUTE_GROUPS}

GROUP_LABELS = {
    conf.NOTIFICATIONS: _("Notifications (fan-out of a publish)"),
    conf.SENDING: _("Sending subscriber emails"),
    conf.SEARCH: _("Search index updates"),
    conf.REPORTS: _("Reports"),
    conf.EMAIL: _("Other site email"),
}

CAPABILITIES = (
    ("supports_defer", "defer"),
    ("supports_priority", "priority"),
    ("supports_get_result", "results"),
    ("supports_async_task", "async"),
)


def backend_capabilities(alias: str) -> str:
    """A short description of what a ``TASKS`` backend can do, e.g. "defer, results"."""
    from wagtail_tasks.task_api import task_backends

    try:
        backend = task_backends[alias]
    except Exception as exc:
        return f"cannot be loaded: {type(exc).__name__}"
    can = [label for flag, label in CAPABILITIES if getattr(backend, flag, False)]
    cannot = [label for flag, label in CAPABILITIES if not getattr(backend, flag, False)]
    text = f"{type(backend).__name__}: " + (", ".join(can) or "no optional features")
    if cannot:
        text += " (no " + ", ".join(cannot) + ")"
    return text


def backend_choices(current: str = "") -> list[tuple[str, str]]:
    """The choices for one group: blank, then every ``TASKS`` alias with its capabilities."""
    choices = [("", str(_("Use the site's configuration (WAGTAIL_TASKS / default)")))]
    for alias in getattr(settings, "TASKS", {}) or {"default": {}}:
        choices.append((alias, f"{alias} — {backend_capabilities(alias)}"))
    if current and current not in {value for value, _label in choices}:
        choices.append((current, f"{current} — removed from TASKS; the default is used"))
    return choices


class TaskSettingsForm(WagtailAdminModelForm):
    """Computes the backend choices when the form is built, from the current ``TASKS``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        aliases = set(getattr(settings, "TASKS", {}) or {"default": {}})
        for group, name in GROUP_FIELDS.items():
            if name not in self.fields:
                continue
            current = getattr(self.instance, name, "") or ""
            field = self.fields[name]
            field.widget = forms.Select(choices=backend_choices(current))
            route = conf.route_for(group)
            help_text = str(_("Blank: %(alias)s (from WAGTAIL_TASKS).")) % {"alias": route.backend}
            if current and current not in aliases:
                help_text = str(
                    _(
                        "Warning: %(alias)s is no longer configured in TASKS; this work "
                        "goes to %(default)s until you pick another backend."
                    )
                ) % {"alias": current, "default": route.backend}
            field.help_text = help_text

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        aliases = set(getattr(settings, "TASKS", {}) or {"default": {}})
        for name in GROUP_FIELDS.values():
            value = cleaned.get(name)
            if value and value not in aliases and value != getattr(self.instance, name, ""):
                self.add_error(name, _("Choose a backend configured in TASKS."))
        return cleaned


@register_setting(icon="cogs")
class TaskSettings(BaseSiteSetting):
    """Per site: the task backend of each kind of work, and publish notifications on/off."""

    notify_on_publish = models.BooleanField(
        _("notify subscribers on publish"),
        default=True,
        help_text=_("When off, publishing a page does not email its subscribers."),
    )
    notifications_backend = models.CharField(
        GROUP_LABELS[conf.NOTIFICATIONS], max_length=100, blank=True
    )
    sending_backend = models.CharField(GROUP_LABELS[conf.SENDING], max_length=100, blank=True)
    search_backend = models.CharField(GROUP_LABELS[conf.SEARCH], max_length=100, blank=True)
    reports_backend = models.CharField(GROUP_LABELS[conf.REPORTS], max_length=100, blank=True)
    email_backend = models.CharField(GROUP_LABELS[conf.EMAIL], max_length=100, blank=True)

    base_form_class = TaskSettingsForm

    panels = [
        FieldPanel("notify_on_publish"),
        MultiFieldPanel(
            [FieldPanel(name) for name in GROUP_FIELDS.values()],
            heading=_("Task backend per kind of work"),
            help_text=_(
                "Capabilities: defer = retries wait and run later on their own; priority = "
                "priorities are honoured; results = the backend can report a job's state "
                "(lost jobs are found and sent again); async = runs async task functions."
            ),
        ),
    ]

    class Meta:
        verbose_name = _("Background tasks")
        verbose_name_plural = _("Background tasks")

    def __str__(self) -> str:
        return f"Background tasks of {self.site}"

    def chosen_backends(self) -> dict[str, str]:
        """group -> alias, for the groups this site chose a backend for."""
        return {
            group: value for group, name in GROUP_FIELDS.items() if (value := getattr(self, name))
        }


def for_site(site: Any) -> TaskSettings | None:
    """The site's setting, or None (never created, no site, or no table): never raises."""
    if site is None:
        return None
    site_id = getattr(site, "pk", site)
    try:
        return TaskSettings.objects.filter(site_id=site_id).first()
    except Exception:
        logger.exception("Could not read the Background tasks setting of site %s", site_id)
        return None


def notify_on_publish(site: Any) -> bool:
    row = for_site(site)
    return True if row is None else row.notify_on_publish
