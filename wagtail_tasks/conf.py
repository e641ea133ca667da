"""Settings for wagtail_tasks, read at call time so that ``override_settings`` works.

Every setting, its default and its meaning live here and in the README's settings reference.
"""

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    # How many recipients one send task mails over one SMTP connection.
    "WAGTAIL_TASKS_SEND_BATCH_SIZE": 100,
    # Deliveries a send task claims per transaction: at most this many are left undecided
    # (maybe sent, never resent) when a worker dies in the middle of a batch.
    "WAGTAIL_TASKS_CLAIM_SIZE": 10,
    # Retries of a send batch while the mail server is down or answers 4xx, and the seconds
    # before the first one; each further retry waits twice as long (7 x from 10 s: 21 min).
    "WAGTAIL_TASKS_SEND_RETRIES": 7,
    "WAGTAIL_TASKS_SEND_RETRY_DELAY": 10,
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
    # Seconds without a heartbeat after which RUNNING work counts as stuck (its worker died).
    "WAGTAIL_TASKS_STUCK_AFTER": 300,
    # Times a piece of work may be found stuck (its worker died) and be enqueued again; after
    # that it stays FAILED for a person to retry. Planned retries (SMTP down) do not count.
    "WAGTAIL_TASKS_MAX_CRASHES": 3,
    # Days to keep finished tracking rows (with their child rows); None keeps them forever.
    "WAGTAIL_TASKS_KEEP_TASKS_FOR": 90,
    # Days to keep the delivery rows of a finished notification (its counts stay on its row).
    "WAGTAIL_TASKS_KEEP_DELIVERIES_FOR": 30,
    # Days to keep unsubscribed subscriptions, and unconfirmed ones past their link's expiry.
    "WAGTAIL_TASKS_KEEP_UNSUBSCRIBED_FOR": 30,
    # Subscribe requests one client address may make: (attempts, seconds); None: no limit.
    "WAGTAIL_TASKS_SUBSCRIBE_LIMIT_PER_CLIENT": (20, 3600),
    # Confirmation emails one email address may receive: (emails, seconds); None: no limit.
    "WAGTAIL_TASKS_CONFIRM_LIMIT_PER_ADDRESS": (3, 3600),
    # The cache alias that holds those counters (share it between web processes).
    "WAGTAIL_TASKS_RATE_LIMIT_CACHE": "default",
    # Reports: STORAGES alias for report files; None: a private folder beside MEDIA_ROOT.
    # Never public media: files are served only by the permission-checked download view.
    "WAGTAIL_TASKS_REPORT_STORAGE": None,
    # Reports: days a report file can be downloaded; wagtail_tasks_prune then deletes it.
    "WAGTAIL_TASKS_KEEP_REPORTS_FOR": 7,
    # Search: keep pages in the search index through tracked tasks (read at call time).
    "WAGTAIL_TASKS_SEARCH_AUTO_UPDATE": True,
    # Search: at startup, disconnect Wagtail's own post_save/post_delete search handlers for
    # page models, so a publish indexes the page once (ours replace them; other models keep them).
    "WAGTAIL_TASKS_SEARCH_REPLACE_WAGTAIL_HANDLERS": True,
    # Search: pages (objects) per batch when reindexing a subtree or rebuilding the index.
    "WAGTAIL_TASKS_SEARCH_BATCH_SIZE": 200,
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


def route_for(group: str, site: Any = None) -> Route:
    """Where a group's work goes: ``WAGTAIL_TASKS``, then the site's "Background tasks" setting.

    With a ``site`` (a Site or its pk), a backend chosen in that site's setting wins, read now,
    so an admin's change takes effect without a restart. A chosen alias that is no longer in
    ``TASKS`` is ignored with a warning (see the check ``wagtail_tasks.W005``); so is any
    error reading the setting: routing never breaks a publish.
    """
    options = get("WAGTAIL_TASKS").get(group, {})
    route = Route(
        backend=options.get("backend", "default"),
        queue=options.get("queue", "default"),
        priority=int(options.get("priority", 0)),
    )
    if site is None:
        return route
    from wagtail_tasks.site_settings import GROUP_FIELDS, for_site

    row = for_site(site)
    alias = getattr(row, GROUP_FIELDS.get(group, ""), "") if row is not None else ""
    if not alias or alias == route.backend:
        return route
    tasks = getattr(settings, "TASKS", {}) or {"default": {}}
    if alias not in tasks:
        logger.warning(
            "Site %s chose the task backend %r for %r, which is not in TASKS; using %r",
            getattr(site, "pk", site),
            alias,
            group,
            route.backend,
        )
        return route
    # The queue configured for the group, if the chosen backend has it; else its default.
    queues = tasks[alias].get("QUEUES") or []
    queue = route.queue if not queues or route.queue in queues else "default"
    return Route(backend=alias, queue=queue, priority=route.priority)
