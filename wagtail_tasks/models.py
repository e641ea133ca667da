"""The tracking model: one row per unit of background work, the source of truth for progress."""

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.translation import gettext_lazy as _


class TaskStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


FINISHED_STATUSES = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)


def target_content_type(obj: models.Model) -> ContentType:
    """The content type a target is recorded under: the root of multi-table inheritance.

    A page is recorded as a ``Page`` whether the caller held the specific page or not, so
    that all the work about one page is found with one lookup by its id.
    """
    parents = obj._meta.get_parent_list()
    return ContentType.objects.get_for_model(parents[-1] if parents else obj)


class TaskRecordQuerySet(models.QuerySet):
    def for_target(self, obj: models.Model) -> "TaskRecordQuerySet":
        return self.filter(
            target_content_type=target_content_type(obj), target_object_id=str(obj.pk)
        )

    def unfinished(self) -> "TaskRecordQuerySet":
        return self.exclude(status__in=FINISHED_STATUSES)

    def lost_in_the_queue(self, cutoff) -> "TaskRecordQuerySet":
        """QUEUED rows that should have started by ``cutoff``: never handed to their backend
        (the process died between commit and enqueue), or handed over long ago."""
        never_sent = models.Q(enqueued_at__isnull=True) & (
            models.Q(heartbeat_at__lt=cutoff)
            | models.Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
        )
        return (
            self.filter(status=TaskStatus.QUEUED)
            .exclude(task_path="")
            .filter(never_sent | models.Q(enqueued_at__lt=cutoff))
        )

    def stuck(self, cutoff) -> "TaskRecordQuerySet":
        """RUNNING with no heartbeat since ``cutoff``, and not waiting for child work.

        A fan-out stays RUNNING while its send batches are queued: that is waiting, not stuck.
        """
        return (
            self.filter(status=TaskStatus.RUNNING)
            .filter(
                models.Q(heartbeat_at__lt=cutoff)
                | models.Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
            )
            .exclude(children__status__in=(TaskStatus.QUEUED, TaskStatus.RUNNING))
        )


class TaskRecord(models.Model):
    """A unit of background work as wagtail_tasks sees it, whatever the backend.

    Created (QUEUED) in the same transaction as the change that asked for the work; the task
    body moves it through RUNNING to a finished status and reports progress on it.
    """

    # Bookkeeping, not content: Wagtail's reference index (and its task per save) skips it.
    wagtail_reference_index_ignore = True

    kind = models.CharField(_("kind"), max_length=64, db_index=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )

    # What the work is about (a page, a subscription ...). Kept as plain ids so that the row
    # outlives its target: a deleted page's notification stays visible.
    target_content_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_object_id = models.CharField(max_length=255, blank=True, db_index=True)
    target = GenericForeignKey("target_content_type", "target_object_id")
    target_repr = models.CharField(_("target"), max_length=255, blank=True)

    site = models.ForeignKey(
        "wagtailcore.Site", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    # What to enqueue again on a retry: the task's import path, its route group in
    # WAGTAIL_TASKS and its arguments (ids and plain JSON only, never personal data).
    task_path = models.CharField(max_length=255, blank=True)
    group = models.CharField(max_length=32, blank=True)
    args = models.JSONField(default=list, blank=True)

    backend_alias = models.CharField(_("backend"), max_length=100, blank=True)
    queue_name = models.CharField(_("queue"), max_length=100, blank=True)
    backend_task_id = models.CharField(max_length=255, blank=True)

    status = models.CharField(
        _("status"),
        max_length=16,
        choices=TaskStatus.choices,
        default=TaskStatus.QUEUED,
        db_index=True,
    )
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    message = models.CharField(_("message"), max_length=255, blank=True)
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Runs whose worker died (found stuck by recover_stuck), apart from planned retries.
    crashes = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    objects = TaskRecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("background task")
        verbose_name_plural = _("background tasks")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["target_content_type", "target_object_id"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def percent(self) -> int:
        if not self.progress_total:
            return 100 if self.status == TaskStatus.SUCCEEDED else 0
        return min(100, round(100 * self.progress_done / self.progress_total))


# Models of the feature rooms live beside their code; importing them here registers them.
from wagtail_tasks.mail.models import QueuedEmail  # noqa: E402
from wagtail_tasks.notifications.models import (  # noqa: E402
    Delivery,
    Notification,
    Subscription,
)
from wagtail_tasks.reports.models import ReportFile  # noqa: E402
from wagtail_tasks.site_settings import TaskSettings  # noqa: E402

__all__ = [
    "Delivery",
    "Notification",
    "QueuedEmail",
    "ReportFile",
    "Subscription",
    "TaskRecord",
    "TaskSettings",
    "TaskStatus",
]
