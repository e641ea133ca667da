"""Settings for wagtail_tasks, read at call time so that ``override_settings`` works.

Every setting, its default and its meaning live here and in the README's settings reference.
"""

from dataclasses import dataclass
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # How many recipients one send task mails over one SMTP connection.
    "WAGTAIL_TASKS_SEND_BATCH_SIZE": 100,
    # How many subscriptions the fan-out task reads per keyset page.
    "WAGTAIL_TASKS_FANOUT_PAGE_SIZE": 1000,
    # Seconds between progress writes to a tracking row while a task runs.
    "WAGTAIL_TASKS_PROGRESS_INTERVAL": 1.0,
    # Seconds a subscription confirmation link stays valid.
    "WAGTAIL_TASKS_CONFIRM_MAX_AGE": 7 * 24 * 3600,
    # Sender of subscriber emails; None means DEFAULT_FROM_EMAIL.
    "WAGTAIL_TASKS_FROM_EMAIL": None,
    # Base URL for links in emails when no Wagtail Site can provide one (e.g. "https://example.com").
    "WAGTAIL_TASKS_BASE_URL": None,
    # The task email backend (wagtail_tasks.mail.TaskEmailBackend): the backend a worker
    # sends with, when no MAILERS alias is given in its OPTIONS ("mailer", Django 6.1+).
    "WAGTAIL_TASKS_MAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    # Retries of a temporary SMTP failure (4xx, connection refused or lost) per message.
    "WAGTAIL_TASKS_MAIL_RETRIES": 5,
    # Seconds before the first retry; each further retry waits twice as long.
    "WAGTAIL_TASKS_MAIL_RETRY_DELAY": 60,
    # Attachments larger than this (bytes) go to the private storage instead of the row.
    "WAGTAIL_TASKS_MAIL_INLINE_LIMIT": 256 * 1024,
    # STORAGES alias for those attachments; None: a private folder beside MEDIA_ROOT.
    "WAGTAIL_TASKS_MAIL_STORAGE": None,
    # Per kind of work: the TASKS backend alias, queue name and priority to use.
    "WAGTAIL_TASKS": {},
}


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])


@dataclass(frozen=True)
class Route:
    """Where one kind of work is enqueued."""

    backend: str = "default"
    queue: str = "default"
    priority: int = 0


# The route groups: each kind of work is enqueued where its group is configured.
NOTIFICATIONS = "notifications"  # fan-out of a publish to its subscribers
SENDING = "sending"  # the subscriber emails themselves: batches and confirmations
SEARCH = "search"  # search index updates
REPORTS = "reports"  # report files generated from the admin
EMAIL = "email"  # any email the site sends through the task email backend
ROUTE_GROUPS = (NOTIFICATIONS, SENDING, SEARCH, REPORTS, EMAIL)


def route_for(group: str) -> Route:
    """The backend alias, queue and priority configured for a group in ``WAGTAIL_TASKS``."""
    options = get("WAGTAIL_TASKS").get(group, {})
    return Route(
        backend=options.get("backend", "default"),
        queue=options.get("queue", "default"),
        priority=int(options.get("priority", 0)),
    )
