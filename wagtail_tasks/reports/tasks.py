"""Asking for a report file, generating it in a task, and cancelling it.

The task's only argument is its tracking row's id: the report, its filters and the format
are on the :class:`ReportFile` row, and the user is the row's ``requested_by``. The worker
binds the report exactly as the admin form did and checks the permission again, so a user
who lost it meanwhile gets no file.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.http import QueryDict
from django.utils import timezone
from django.utils.text import get_valid_filename
from django.utils.translation import gettext_lazy as _

from wagtail_tasks import conf
from wagtail_tasks.kinds import register_kind
from wagtail_tasks.models import (
    FINISHED_STATUSES,
    TaskRecord,
    TaskStatus,
    target_content_type,
)
from wagtail_tasks.reports.base import Report, ReportNotFound, get_report_class
from wagtail_tasks.reports.files import delete_stored, report_storage, store, write_report
from wagtail_tasks.reports.models import ReportFile
from wagtail_tasks.task_api import task
from wagtail_tasks.tracking import TaskCancelled, TaskRun, enqueue, finish, tracked

KIND_REPORT = register_kind("reports.generate", _("Report file"))

# Form fields that are not filters: never stored with the file.
NOT_FILTERS = ("csrfmiddlewaretoken", "format", "export", "p")


class ReportError(Exception):
    """Why a report could not be generated, in words for the person who asked."""


def filter_values(data: QueryDict, form: Any | None) -> dict[str, list[str]]:
    """The values of the report's filter fields (a date range's ``<name>_after`` too): any
    other key of a hand-made POST, megabytes of it, would be stored and linked with the file."""
    names = tuple(form.add_prefix(name) for name in form.fields) if form is not None else ()
    return {
        key: values
        for key, values in data.lists()
        if key not in NOT_FILTERS and any(key == n or key.startswith(f"{n}_") for n in names)
    }


def as_query_dict(values: dict[str, list[str]]) -> QueryDict:
    data = QueryDict(mutable=True)
    for key, items in values.items():
        data.setlist(key, items)
    return data


def request_report(report: Report, format: str, site: Any = None) -> ReportFile:
    """Record a report file and enqueue its generation after commit. ``report`` must be
    bound to valid filters (:meth:`Report.is_valid`).

    A double click, or Generate again while the same file is still being made, gets that
    file: one worker writing it twice would help nobody."""
    filters = filter_values(report.data, report.form)
    unfinished = ReportFile.objects.filter(
        report_name=report.name, format=format, record__requested_by=report.user
    ).exclude(record__status__in=FINISHED_STATUSES)
    for report_file in unfinished:
        if report_file.filters == filters:
            return report_file
    # get_filename() is SpreadsheetExportMixin's hook; a developer's override may hold anything.
    name = get_valid_filename(f"{report.get_filename()}-{timezone.localdate():%Y-%m-%d}")
    filename = f"{name.lstrip('.')[-200:]}.{format}"
    with transaction.atomic():
        record = enqueue(
            generate_report,
            kind=KIND_REPORT,
            group=conf.REPORTS,
            site=site,
            requested_by=report.user,
        )
        report_file = ReportFile.objects.create(
            record=record,
            report_name=report.name,
            title=str(report.title)[:255],
            format=format,
            filters=filters,
            filters_display=report.filters_display(),
            filename=filename,
        )
        TaskRecord.objects.filter(pk=record.pk).update(
            target_content_type=target_content_type(report_file),
            target_object_id=str(report_file.pk),
            target_repr=str(report_file)[:255],
        )
    return report_file


def bound_report(report_file: ReportFile, user: Any) -> Report:
    """The report of ``report_file``, bound to its filters for ``user``, or ReportError."""
    if user is None:
        raise ReportError("The person who asked for this report no longer has an account.")
    try:
        report = get_report_class(report_file.report_name)(user)
    except ReportNotFound:
        raise ReportError(
            f"The report {report_file.report_name!r} is no longer available on this site."
        ) from None
    if not report.has_permission():
        raise ReportError(f"{user.get_username()} may no longer run the report “{report.title}”.")
    report.bind(as_query_dict(report_file.filters))
    if not report.is_valid():
        errors = "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in report.form.errors.items()
        )
        raise ReportError(f"The filters are not valid any more: {errors}")
    return report


@task
@tracked
def generate_report(run: TaskRun) -> int:
    """Write the report to a temporary file, then store it whole; returns the row count."""
    report_file = ReportFile.objects.get(record_id=run.id)
    report = bound_report(report_file, run.record.requested_by)
    rows = report.get_filtered_queryset()
    run.progress(0, report.count(rows), message="Reading rows", force=True)

    def progress(written: int) -> None:
        run.raise_if_cancelled()
        run.progress(written, message=f"{written} rows written")

    with tempfile.TemporaryFile(prefix="wagtail-tasks-report-") as temporary:
        count = write_report(report, rows, report_file.format, temporary, progress)
        run.raise_if_cancelled()
        name = store(report_file, temporary)
    try:
        size = report_storage().size(name)
        days = conf.get("WAGTAIL_TASKS_KEEP_REPORTS_FOR")
        with transaction.atomic():
            # A cancel that came while the file was being stored wins: the file goes.
            locked = TaskRecord.objects.select_for_update().filter(pk=run.id).first()
            if locked is None or locked.status != TaskStatus.RUNNING:
                raise TaskCancelled(locked.message if locked else "Cancelled")
            ReportFile.objects.filter(pk=report_file.pk).update(
                stored_name=name,
                size=size,
                rows=count,
                expires_at=None if days is None else timezone.now() + timedelta(days=days),
            )
            run.progress(count, count, force=True)
            finish(run.id, TaskStatus.SUCCEEDED, message=f"{count} rows", run=run)
    except BaseException:
        # Not recorded as this row's file: nothing would ever expire it. Delete it now.
        delete_stored(name)
        raise
    return count


def cancel_report(report_file: ReportFile, user: Any) -> bool:
    """Stop a report that has not finished; False if it had (its file, if any, stays)."""
    who = user.get_username() if getattr(user, "pk", None) else "someone"
    with transaction.atomic():
        locked = TaskRecord.objects.select_for_update().filter(pk=report_file.record_id).first()
        if locked is None or locked.is_finished:
            return False
        return finish(locked.pk, TaskStatus.CANCELLED, message=f"Cancelled by {who}")


def delete_report_file(report_file: ReportFile) -> None:
    """Delete the stored file now (the row stays, as expired)."""
    delete_stored(report_file.stored_name)
    ReportFile.objects.filter(pk=report_file.pk).update(expired_at=timezone.now())
