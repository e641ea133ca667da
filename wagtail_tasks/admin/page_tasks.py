"""What the editor panel shows about one page, read from tracking rows only, in constant queries.

:func:`page_tasks` is the one reader: the panel, its JSON endpoint and the page header buttons
call it. The panel's actions (retry, cancel, send) are plain functions here too, so that code
and the admin views share them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from wagtail.log_actions import log
from wagtail.models import Page

from wagtail_tasks.kinds import label_for
from wagtail_tasks.models import FINISHED_STATUSES, TaskRecord, TaskStatus
from wagtail_tasks.notifications.mixins import NotifySubscribersMixin
from wagtail_tasks.notifications.models import (
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationTrigger,
)
from wagtail_tasks.tracking import finish, requeue

# How many notifications and how many other tracking rows the panel lists, newest first.
NOTIFICATIONS_SHOWN = 5
OTHER_TASKS_SHOWN = 10

LOG_RETRY = "wagtail_tasks.retry_deliveries"
LOG_CANCEL = "wagtail_tasks.cancel_notification"
LOG_SEND = "wagtail_tasks.send_notification"


def notification_kinds() -> tuple[str, str]:
    from wagtail_tasks.notifications.tasks import KIND_NOTIFY, KIND_SEND

    return KIND_NOTIFY, KIND_SEND


@dataclass
class NotificationProgress:
    """One notification as the panel shows it: delivery counts and its tracking row."""

    notification: Notification
    total: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    now: datetime = field(default_factory=timezone.now)

    @property
    def record(self) -> TaskRecord | None:
        return self.notification.record

    @property
    def status(self) -> str:
        return self.record.status if self.record else TaskStatus.SUCCEEDED

    @property
    def status_label(self) -> str:
        return TaskStatus(self.status).label

    @property
    def is_active(self) -> bool:
        return self.status not in FINISHED_STATUSES

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.skipped

    @property
    def unfinished(self) -> int:
        """Pending, being sent, or not created yet (while the fan-out runs)."""
        return max(0, self.total - self.done)

    @property
    def percent(self) -> int:
        """Share of deliveries with an outcome (sent, failed or skipped), 0-100.

        100 only once the notification has finished: while it runs, more deliveries may
        still be created, so the bar never shows full (and never goes back) before the end.
        """
        if not self.total:
            return 0 if self.is_active else 100
        percent = min(100, (100 * self.done) // self.total)
        return min(percent, 99) if self.is_active else percent

    @property
    def started_at(self) -> datetime | None:
        return self.record.started_at if self.record else self.notification.created_at

    @property
    def finished_at(self) -> datetime | None:
        return self.record.finished_at if self.record else None

    @property
    def error(self) -> str:
        return self.record.error if self.record else ""

    @property
    def message(self) -> str:
        return self.record.message if self.record else ""

    @property
    def time_left(self) -> timedelta | None:
        """An estimate while running: the rate so far applied to what is left."""
        if not self.is_active or not self.started_at or not self.done or not self.unfinished:
            return None
        elapsed = (self.now - self.started_at).total_seconds()
        if elapsed <= 0:
            return None
        return timedelta(seconds=round(self.unfinished * elapsed / self.done))

    @property
    def time_left_text(self) -> str:
        left = self.time_left
        if left is None:
            return ""
        seconds = int(left.total_seconds())
        if seconds < 60:
            return _("about %(n)d s") % {"n": max(seconds, 1)}
        if seconds < 3600:
            return _("about %(n)d min") % {"n": round(seconds / 60)}
        return _("about %(h)d h %(m)d min") % {"h": seconds // 3600, "m": seconds % 3600 // 60}

    @property
    def fan_out_failed(self) -> bool:
        """The notification failed before any email could be given a send batch."""
        return self.status == TaskStatus.FAILED and self.notification.fanned_out_at is None

    @property
    def can_retry(self) -> bool:
        if self.record is None or self.status == TaskStatus.CANCELLED:
            return False
        return self.failed > 0 or self.fan_out_failed

    @property
    def can_cancel(self) -> bool:
        return self.record is not None and self.is_active


@dataclass
class OtherTask:
    """Any other tracking row about the page (search index work, reports ...), shown as is."""

    record: TaskRecord

    @property
    def label(self) -> str:
        return label_for(self.record.kind)

    @property
    def status_label(self) -> str:
        return TaskStatus(self.record.status).label

    @property
    def is_active(self) -> bool:
        return not self.record.is_finished


@dataclass
class PageTasks:
    page: Page
    notifications: list[NotificationProgress]
    others: list[OtherTask]
    active: bool
    can_notify: bool  # live, notifies subscribers, and the live revision has no notification

    @property
    def is_empty(self) -> bool:
        return not self.notifications and not self.others


def page_tasks(page: Page, now: datetime | None = None) -> PageTasks:
    """Read the panel's figures: five queries at most, whatever the number of deliveries."""
    now = now or timezone.now()
    notifications = list(
        Notification.objects.filter(page_id=page.pk)
        .select_related("record")
        .order_by("-created_at", "-pk")[:NOTIFICATIONS_SHOWN]
    )
    progress = {n.pk: NotificationProgress(n, now=now) for n in notifications}
    if progress:
        counts = (
            Delivery.objects.filter(notification_id__in=list(progress))
            .values("notification_id")
            .order_by()
            .annotate(
                total=Count("pk"),
                sent=Count("pk", filter=Q(status=DeliveryStatus.SENT)),
                failed=Count("pk", filter=Q(status=DeliveryStatus.FAILED)),
                skipped=Count("pk", filter=Q(status=DeliveryStatus.SKIPPED)),
            )
        )
        for row in counts:
            item = progress[row["notification_id"]]
            item.total, item.sent = row["total"], row["sent"]
            item.failed, item.skipped = row["failed"], row["skipped"]
    for item in progress.values():
        # While the fan-out runs, its row knows how many subscribers there are to reach.
        record = item.record
        if item.notification.fanned_out_at is None and record and record.progress_total:
            item.total = max(item.total, record.progress_total)

    about_page = TaskRecord.objects.for_target(page)
    others = [
        OtherTask(record)
        for record in about_page.exclude(kind__in=notification_kinds())
        .defer("args")
        .order_by("-created_at", "-pk")[:OTHER_TASKS_SHOWN]
    ]
    # Anything still to do about the page, shown or not (a fan-out's send batches too).
    active = about_page.unfinished().exists()

    shown = {n.revision_id for n in notifications}
    can_notify = page_can_notify(page, shown, checked_all=len(notifications) < NOTIFICATIONS_SHOWN)
    return PageTasks(page, list(progress.values()), others, active, can_notify)


def page_can_notify(page: Page, known: set | None = None, checked_all: bool = False) -> bool:
    """Whether the page notifies subscribers, is live, and its live revision has not been sent.

    ``known`` are revision ids already known to have a notification; with ``checked_all``
    they are all of them, and no query is needed.
    """
    if not (page.live and issubclass(page.specific_class or Page, NotifySubscribersMixin)):
        return False
    revision_id = page.live_revision_id
    if revision_id is None or revision_id in (known or ()):
        return False
    if checked_all:
        return True
    return not Notification.objects.filter(page_id=page.pk, revision_id=revision_id).exists()


# Actions ---------------------------------------------------------------------------------------


def retry_failed_deliveries(notification: Notification, user: Any) -> int:
    """Send the failed deliveries again, and the ones a failed send batch left pending.

    They go back to PENDING without a batch and get new send batches through the same path
    as the fan-out (``enqueue_send_batches``); the notification's row runs again until they
    finish. Sent mail is never touched. Returns how many deliveries will be sent.
    """
    from wagtail_tasks.notifications.tasks import KIND_SEND, enqueue_send_batches

    record = notification.record
    if record is None or record.status == TaskStatus.CANCELLED:
        return 0
    with transaction.atomic():
        deliveries = Delivery.objects.filter(notification=notification)
        failed = deliveries.filter(status=DeliveryStatus.FAILED).update(
            status=DeliveryStatus.PENDING, batch=None, reason=""
        )
        dead_batches = TaskRecord.objects.filter(
            parent_id=record.pk, kind=KIND_SEND, status=TaskStatus.FAILED
        )
        stranded = deliveries.filter(status=DeliveryStatus.PENDING, batch__in=dead_batches).update(
            batch=None
        )
        count = failed + stranded
        if not count:
            return 0
        TaskRecord.objects.filter(pk=record.pk).update(
            status=TaskStatus.RUNNING,
            error="",
            finished_at=None,
            heartbeat_at=timezone.now(),
            message=f"Retrying {count} deliveries",
        )
        record.refresh_from_db()
        enqueue_send_batches(notification, record)
        log(
            instance=notification.page,
            action=LOG_RETRY,
            user=user,
            data={"notification": notification.pk, "deliveries": count},
        )
    return count


def retry_fan_out(notification: Notification, user: Any) -> bool:
    """Run a notification again that failed before it reached its subscribers (a broken
    template, a deleted section ...), with :func:`~wagtail_tasks.tracking.requeue`.

    The fan-out is idempotent: deliveries it made before failing are not made twice.
    """
    record = notification.record
    if record is None or notification.fanned_out_at is not None:
        return False
    with transaction.atomic():
        if not requeue(record):
            return False
        log(
            instance=notification.page,
            action=LOG_RETRY,
            user=user,
            data={"notification": notification.pk, "deliveries": 0, "fan_out": True},
        )
    return True


def cancel_notification(notification: Notification, user: Any) -> int:
    """Stop a notification that has not finished: what is still pending is skipped.

    Already sent mail stays sent; a batch that is sending now stops at its next claim (its
    deliveries are no longer pending). Returns how many deliveries were skipped, or -1 if the
    notification had already finished.
    """
    record = notification.record
    if record is None:
        return -1
    who = user.get_username() if getattr(user, "pk", None) else "an editor"
    reason = f"Cancelled by {who}"
    with transaction.atomic():
        # Lock the row: a batch finishing now cannot finish the notification meanwhile.
        locked = TaskRecord.objects.select_for_update().filter(pk=record.pk).first()
        if locked is None or locked.is_finished:
            return -1
        skipped = Delivery.objects.filter(
            notification=notification, status=DeliveryStatus.PENDING
        ).update(status=DeliveryStatus.SKIPPED, reason=reason)
        now = timezone.now()
        TaskRecord.objects.filter(parent_id=record.pk).exclude(status__in=FINISHED_STATUSES).update(
            status=TaskStatus.CANCELLED, message=reason, finished_at=now, heartbeat_at=now
        )
        finish(record.pk, TaskStatus.CANCELLED, message=f"{reason}; {skipped} emails skipped")
        log(
            instance=notification.page,
            action=LOG_CANCEL,
            user=user,
            data={"notification": notification.pk, "skipped": skipped},
        )
    return skipped


def send_notification(page: Page, user: Any) -> Notification | None:
    """Notify the subscribers of the live revision, as an editor asked; None if it is not live
    or was notified already."""
    from wagtail_tasks.notifications.policy import notify_subscribers

    specific = page.specific
    if not isinstance(specific, NotifySubscribersMixin) or not page.live:
        return None
    revision = page.live_revision
    if revision is None or Notification.objects.filter(page=page, revision=revision).exists():
        return None
    with transaction.atomic():
        notification = notify_subscribers(
            specific, revision, NotificationTrigger.REQUESTED, requested_by=user
        )
        log(
            instance=page,
            action=LOG_SEND,
            user=user,
            data={"notification": notification.pk, "revision": revision.pk},
        )
    return notification


__all__ = [
    "NotificationProgress",
    "OtherTask",
    "PageTasks",
    "cancel_notification",
    "page_tasks",
    "retry_failed_deliveries",
    "retry_fan_out",
    "send_notification",
]
