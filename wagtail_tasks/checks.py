"""System checks: every route in ``WAGTAIL_TASKS`` (and in the sites' "Background tasks"
setting) names a configured ``TASKS`` backend that can do what the group needs, and the
private storages are configured and private.

=====================  ==========================================================================
``wagtail_tasks.E001``  a group's backend alias is not in ``TASKS``
``wagtail_tasks.E002``  a group's queue is not in its backend's ``QUEUES``
``wagtail_tasks.W003``  a group has a priority but its backend does not ``supports_priority``
``wagtail_tasks.W004``  a group retries with ``run_after`` but its backend cannot defer
``wagtail_tasks.W005``  a site's "Background tasks" setting names an alias that is not in ``TASKS``
``wagtail_tasks.E006``  ``WAGTAIL_TASKS_REPORT_STORAGE`` / ``_MAIL_STORAGE`` is not in ``STORAGES``
``wagtail_tasks.W007``  that storage is a folder inside ``MEDIA_ROOT``: its files would be public
=====================  ==========================================================================
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.db import DatabaseError

from wagtail_tasks import conf
from wagtail_tasks.storage import in_media_root

# Groups whose tasks retry a temporary failure later (``TaskRun.retry_later``): sending
# batches retry an SMTP outage, the task email backend retries a 4xx per message.
GROUPS_THAT_RETRY = (conf.SENDING, conf.EMAIL)


def configured_aliases() -> list[str]:
    return list(getattr(settings, "TASKS", {}) or {"default": {}})


def backend_or_none(alias: str) -> Any:
    from wagtail_tasks.task_api import task_backends

    try:
        return task_backends[alias]
    except Exception:
        return None


@register()
def check_routes(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    aliases = configured_aliases()
    configured = conf.get("WAGTAIL_TASKS")
    for group in conf.ROUTE_GROUPS:
        route = conf.route_for(group)
        where = f"WAGTAIL_TASKS[{group!r}]" if group in configured else f"{group!r} (default)"
        if route.backend not in aliases:
            messages.append(
                Error(
                    f"{where} uses the task backend {route.backend!r}, which is not in TASKS.",
                    hint=f"Use one of the TASKS aliases ({', '.join(sorted(aliases))}) or add "
                    f"{route.backend!r} to TASKS.",
                    id="wagtail_tasks.E001",
                )
            )
            continue
        backend = backend_or_none(route.backend)
        if backend is None:
            continue  # Django's own task checks report a backend that cannot be loaded.
        queues = getattr(backend, "queues", None)
        if queues and route.queue not in queues:
            messages.append(
                Error(
                    f"{where} uses the queue {route.queue!r}, which the task backend "
                    f"{route.backend!r} does not list in its QUEUES.",
                    hint=f"Add {route.queue!r} to TASKS[{route.backend!r}]['QUEUES'] or use one of "
                    f"{', '.join(sorted(queues))}. Workers must also work that queue.",
                    id="wagtail_tasks.E002",
                )
            )
        if route.priority and not backend.supports_priority:
            messages.append(
                Warning(
                    f"{where} sets priority {route.priority}, but the task backend "
                    f"{route.backend!r} does not support priorities.",
                    hint="The priority is ignored: tasks are enqueued without one. Remove it, "
                    "or route the group to a backend that supports_priority.",
                    id="wagtail_tasks.W003",
                )
            )
        if group in GROUPS_THAT_RETRY and not backend.supports_defer:
            messages.append(
                Warning(
                    f"{where}: tasks of this group retry temporary failures later (run_after), "
                    f"but the task backend {route.backend!r} cannot defer tasks.",
                    hint="A temporary failure (mail server down, 4xx) is not retried "
                    "automatically: the tracking row fails visibly with the reason and waits "
                    "for a person to retry it (wagtail_tasks.tracking.requeue). Route the group "
                    "to a backend that supports_defer to retry on its own.",
                    id="wagtail_tasks.W004",
                )
            )
    return messages


@register()
def check_site_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Sites whose "Background tasks" setting names a backend alias that is gone."""
    from wagtail_tasks.site_settings import TaskSettings

    aliases = set(configured_aliases())
    try:
        rows = list(TaskSettings.objects.select_related("site"))
    except (DatabaseError, RuntimeError):
        return []  # not migrated yet, or no database access here
    messages: list[CheckMessage] = []
    for row in rows:
        for group, alias in row.chosen_backends().items():
            if alias not in aliases:
                messages.append(
                    Warning(
                        f"The site {row.site} chose the task backend {alias!r} for {group!r} "
                        "in its Background tasks setting, but TASKS has no such alias.",
                        hint="Its work goes to the WAGTAIL_TASKS route (or 'default') instead. "
                        "Pick a backend again in Settings > Background tasks for that site.",
                        obj=row,
                        id="wagtail_tasks.W005",
                    )
                )
    return messages


PRIVATE_STORAGE_SETTINGS = ("WAGTAIL_TASKS_REPORT_STORAGE", "WAGTAIL_TASKS_MAIL_STORAGE")


@register()
def check_private_storages(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report files and mail attachments hold personal data: never in public media."""
    messages: list[CheckMessage] = []
    storages_setting = getattr(settings, "STORAGES", {}) or {}
    for name in PRIVATE_STORAGE_SETTINGS:
        alias = conf.get(name)
        if not alias:
            continue  # the default folder is beside MEDIA_ROOT, not in it
        if alias not in storages_setting:
            messages.append(
                Error(
                    f"{name} is {alias!r}, which is not an alias in STORAGES.",
                    hint="Add that alias to STORAGES, or set the setting to None for the "
                    "default private folder beside MEDIA_ROOT.",
                    id="wagtail_tasks.E006",
                )
            )
            continue
        location = (storages_setting[alias].get("OPTIONS") or {}).get("location")
        if location and in_media_root(location):
            messages.append(
                Warning(
                    f"{name} ({alias!r}) keeps its files in {location}, inside MEDIA_ROOT: "
                    "the web server would serve them to anyone with the URL.",
                    hint="Give that storage a location outside MEDIA_ROOT.",
                    id="wagtail_tasks.W007",
                )
            )
    return messages
