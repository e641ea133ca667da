"""When a publication notifies subscribers. Signal handlers decide; tasks do the work."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from wagtail.models import Page, Revision

from wagtail_tasks import conf, site_settings
from wagtail_tasks.models import TaskRecord
from wagtail_tasks.notifications.mixins import NotifySubscribersMixin
from wagtail_tasks.notifications.models import Notification, NotificationTrigger
from wagtail_tasks.tracking import enqueue

logger = logging.getLogger(__name__)


def on_page_published(
    sender: type, instance: Page, revision: Revision | None = None, **kwargs: Any
) -> None:
    """``page_published`` fires on every publishing path: editor, workflow approval,
    ``publish_scheduled``, bulk actions and code. Decide here whether it notifies."""
    if kwargs.get("alias"):
        # Wagtail sends one extra signal per alias of the published page; the original's
        # signal already notified, and an alias has no revision of its own.
        return
    if not isinstance(instance, NotifySubscribersMixin):
        return
    if not instance.live:
        # A never-live page scheduled for later fires now with live=False; the signal that
        # publish_scheduled sends at go-live is the one that notifies.
        return
    if not site_settings.notify_on_publish(instance.get_site()):
        # The site's "Background tasks" setting turned publish notifications off.
        return
    if instance.should_notify_subscribers(revision):
        notify_subscribers(instance, revision, NotificationTrigger.FIRST_PUBLISH)


def notify_subscribers(
    page: Page,
    revision: Revision | None,
    trigger: str,
    requested_by: Any = None,
) -> Notification:
    """Create the notification for this publication and enqueue its fan-out after commit.

    There is at most one notification per (page, revision): asking twice returns the first.
    """
    revision = revision or page.live_revision
    existing = Notification.objects.filter(page=page, revision=revision).first()
    if existing is not None and revision is not None:
        return existing
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                page=page,
                revision=revision,
                page_title=page.title[:255],
                trigger=trigger,
                requested_by=requested_by if getattr(requested_by, "pk", None) else None,
            )
            enqueue_fan_out(notification, page, requested_by)
    except IntegrityError:
        # Another request created it between our check and our insert.
        return Notification.objects.get(page=page, revision=revision)
    return notification


def enqueue_fan_out(notification: Notification, page: Page, requested_by: Any) -> TaskRecord:
    from wagtail_tasks.notifications.tasks import KIND_NOTIFY, fan_out_notification

    record = enqueue(
        fan_out_notification,
        notification.pk,
        kind=KIND_NOTIFY,
        group=conf.NOTIFICATIONS,
        target=page,
        site=page.get_site(),
        requested_by=requested_by,
    )
    Notification.objects.filter(pk=notification.pk).update(record=record)
    notification.record = record
    return record
