"""How long wagtail_tasks keeps what it records, and what it erases when a subscriber leaves.

``prune()`` (``manage.py wagtail_tasks_prune``, run daily) deletes, by the ``WAGTAIL_TASKS_KEEP_*``
settings: expired report files (their rows stay, marked expired), finished tracking rows, the
delivery rows of finished notifications (their counts stay on the notification's tracking
row), and unsubscribed or never-confirmed subscriptions.
The signal handlers erase the address details of a subscriber's deliveries as soon as they
unsubscribe or are deleted, whatever the retention.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from wagtail_tasks import conf
from wagtail_tasks.models import FINISHED_STATUSES, TaskRecord
from wagtail_tasks.notifications.models import (
    Delivery,
    Subscription,
    SubscriptionStatus,
    erase_delivery_details,
)
from wagtail_tasks.reports.files import expire_files
from wagtail_tasks.reports.models import ReportFile


@dataclass
class Pruned:
    tasks: int = 0
    deliveries: int = 0
    subscriptions: int = 0
    report_files: int = 0


def days_ago(now: datetime, setting: str) -> datetime | None:
    days = conf.get(setting)
    return None if days is None else now - timedelta(days=days)


def prune(now: datetime | None = None) -> Pruned:
    now = now or timezone.now()
    pruned = Pruned()
    pruned.report_files = expire_files(now)
    if cutoff := days_ago(now, "WAGTAIL_TASKS_KEEP_DELIVERIES_FOR"):
        finished = Q(notification__record__status__in=FINISHED_STATUSES) | Q(
            notification__record__isnull=True
        )
        old = Delivery.objects.filter(finished, notification__created_at__lt=cutoff)
        pruned.deliveries = old.delete()[0]  # nothing refers to a delivery: one DELETE
    if cutoff := days_ago(now, "WAGTAIL_TASKS_KEEP_TASKS_FOR"):
        # Top-level rows only: their children go with them (and are no younger).
        old = TaskRecord.objects.filter(
            parent__isnull=True, status__in=FINISHED_STATUSES, finished_at__lt=cutoff
        )
        # A report file kept longer than its tracking row goes with it, file and all.
        pruned.report_files += expire_files(now, ReportFile.objects.filter(record__in=old))
        pruned.tasks = old.delete()[1].get(TaskRecord._meta.label, 0)
    if cutoff := days_ago(now, "WAGTAIL_TASKS_KEEP_UNSUBSCRIBED_FOR"):
        confirm_expired = now - timedelta(seconds=conf.get("WAGTAIL_TASKS_CONFIRM_MAX_AGE"))
        leavers = Subscription.objects.filter(
            Q(status=SubscriptionStatus.UNSUBSCRIBED, unsubscribed_at__lt=cutoff)
            | Q(status=SubscriptionStatus.PENDING, created_at__lt=min(cutoff, confirm_expired))
        )
        pruned.subscriptions = leavers.delete()[1].get(Subscription._meta.label, 0)
    return pruned


def erase_on_unsubscribe(sender, instance: Subscription, **kwargs) -> None:
    """post_save: an unsubscription made in the admin (or in code) erases like the link does."""
    if instance.status == SubscriptionStatus.UNSUBSCRIBED:
        erase_delivery_details([instance.pk])


def erase_on_delete(sender, instance: Subscription, **kwargs) -> None:
    """pre_delete: before the deliveries lose their link to the subscription."""
    erase_delivery_details([instance.pk])
