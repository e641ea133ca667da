"""A report file: what was asked for (report, filters, format), and the file once it exists.

Its tracking row (``record``) holds the status, progress, who asked and any error. The file
lives in the private report storage (:mod:`wagtail_tasks.reports.files`) and is deleted when
it expires; this row stays, with ``expired_at`` set, as long as its tracking row.
"""

from urllib.parse import urlencode

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from wagtail_tasks.models import TaskRecord, TaskStatus


class ReportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", _("Excel (XLSX)")


CONTENT_TYPES = {
    ReportFormat.CSV: "text/csv; charset=utf-8",
    ReportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ReportFileQuerySet(models.QuerySet):
    def for_user(self, user) -> "ReportFileQuerySet":
        return self.filter(record__requested_by=user)

    def expired_by(self, now) -> "ReportFileQuerySet":
        """Files past their expiry that are still stored."""
        return self.filter(expires_at__lt=now, expired_at__isnull=True).exclude(stored_name="")


class ReportFile(models.Model):
    record = models.OneToOneField(TaskRecord, on_delete=models.CASCADE, related_name="report_file")
    report_name = models.CharField(_("report"), max_length=64, db_index=True)
    title = models.CharField(_("title"), max_length=255)
    format = models.CharField(_("format"), max_length=8, choices=ReportFormat.choices)
    # The filter values as the form got them ({name: [values]}), and as people read them.
    filters = models.JSONField(default=dict, blank=True)
    filters_display = models.JSONField(default=list, blank=True)

    # Set once the whole file is stored, never before: a failed run leaves nothing to download.
    stored_name = models.CharField(max_length=255, blank=True)
    filename = models.CharField(_("file name"), max_length=255, blank=True)
    size = models.PositiveBigIntegerField(_("size"), null=True, blank=True)
    rows = models.PositiveIntegerField(_("rows"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)

    objects = ReportFileQuerySet.as_manager()

    class Meta:
        verbose_name = _("report file")
        verbose_name_plural = _("report files")
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_format_display()}) #{self.pk}"

    @property
    def filters_query(self) -> str:
        """The filters as a query string: the report's form opens with them filled in."""
        return urlencode(self.filters, doseq=True)

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def is_ready(self) -> bool:
        return bool(
            self.record.status == TaskStatus.SUCCEEDED
            and self.stored_name
            and self.expired_at is None
            and (self.expires_at is None or self.expires_at > timezone.now())
        )

    @property
    def is_expired(self) -> bool:
        return self.expired_at is not None or bool(
            self.expires_at and self.expires_at <= timezone.now()
        )
