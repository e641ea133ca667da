"""Report files: writing rows to CSV or XLSX, the private storage, and expiry.

A file is written to a local temporary file first and moved into the storage only when it
is whole, so a run that fails or is cancelled half way leaves nothing that can be downloaded.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

from django.core.exceptions import ImproperlyConfigured
from django.core.files import File
from django.core.files.storage import Storage
from django.utils import timezone
from wagtail.admin.views.mixins import ExcelDateFormatter

from wagtail_tasks.reports.base import FORMAT_CSV, FORMAT_XLSX, Report
from wagtail_tasks.reports.models import ReportFile
from wagtail_tasks.storage import in_media_root, private_storage

logger = logging.getLogger(__name__)

# A spreadsheet runs a cell that starts with one of these as a formula ("CSV injection");
# Wagtail's XLSX writer keeps such cells as text, and so does our CSV writer.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# Excel refuses a sheet title with one of these characters (openpyxl raises), or longer than 31.
SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def sheet_title(title: Any) -> str:
    """The report's title as a sheet title Excel takes: "Drafts: news/events" would otherwise
    fail every XLSX file of the report."""
    title = SHEET_TITLE_FORBIDDEN.sub(" ", str(title)).strip(" '")[:31].strip(" '")
    return title or "Sheet1"


def xlsx_cells(row: dict[str, Any]) -> dict[str, Any]:
    """The row's text without the control characters XLSX cannot hold: openpyxl raises on
    them, and one page title pasted with a vertical tab would fail the whole file."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return {
        field: ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value
        for field, value in row.items()
    }


def report_storage() -> Storage:
    """The ``WAGTAIL_TASKS_REPORT_STORAGE`` alias of ``STORAGES``, else a private folder
    (``wagtail_tasks_private/reports`` beside ``MEDIA_ROOT``)."""
    storage = private_storage("WAGTAIL_TASKS_REPORT_STORAGE", "reports")
    location = getattr(storage, "location", None)
    # An alias such as "default" would put subscribers' addresses in public media.
    if location and in_media_root(location):
        raise ImproperlyConfigured(
            f"WAGTAIL_TASKS_REPORT_STORAGE is a folder in MEDIA_ROOT ({location}): report "
            "files would be public. Name a storage outside it, or unset the setting."
        )
    return storage


def as_text_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_report(
    report: Report, rows: Any, format: str, out: IO[bytes], progress: Callable[[int], None]
) -> int:
    """Write the report's rows to ``out``; call ``progress(rows_written)`` after each chunk.
    Returns the number of rows written."""
    sheet = report.spreadsheet
    fields = list(sheet.list_export)
    headings = report.headings(rows)
    written = 0
    if format == FORMAT_CSV:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        writer = csv.writer(text)
        writer.writerow(headings)
        for chunk in report.chunks(rows):
            for item in chunk:
                row = sheet.to_row_dict(item)
                writer.writerow(
                    as_text_cell(sheet.preprocess_field_value(field, row[field], FORMAT_CSV))
                    for field in fields
                )
            written += len(chunk)
            progress(written)
        text.flush()
        text.detach()
        return written
    if format == FORMAT_XLSX:
        # Imported here, as Wagtail does: importing openpyxl costs every process several MB.
        from openpyxl import Workbook

        # Write-only: openpyxl streams rows to a temporary file, so memory stays flat.
        workbook = Workbook(write_only=True, iso_dates=True)
        worksheet = workbook.create_sheet(title=sheet_title(report.title))
        worksheet.append(headings)
        date_format = ExcelDateFormatter().get()
        try:
            for chunk in report.chunks(rows):
                for item in chunk:
                    row = xlsx_cells(sheet.to_row_dict(item))
                    worksheet.append(
                        sheet.generate_xlsx_row(worksheet, row, date_format=date_format)
                    )
                written += len(chunk)
                progress(written)
        except BaseException:
            discard_sheet(worksheet)
            raise
        workbook.save(out)
        return written
    raise ValueError(f"Unknown report format {format!r}")


def discard_sheet(worksheet: Any) -> None:
    """Remove the temporary file a write-only sheet keeps its rows in: openpyxl removes it on
    save or at process exit, so a report that stops half way would leave rows in a worker's
    temporary folder for as long as the worker lives."""
    writer = worksheet._writer
    if writer is None:
        return
    try:
        if worksheet._rows is not None:
            worksheet._rows.close()  # its rows' element first, then the sheet's file
        writer.close()
    finally:
        writer.cleanup()


def store(report_file: ReportFile, temporary: IO[bytes]) -> str:
    """Move a whole file into the storage under a name nobody can guess; return the name."""
    temporary.seek(0)
    name = f"{secrets.token_hex(16)}/{report_file.filename}"
    return report_storage().save(name, File(temporary))


def delete_stored(name: str) -> None:
    if not name:
        return
    try:
        report_storage().delete(name)
    except Exception:
        logger.exception("Could not delete report file %s", name)


def expire_files(now: datetime | None = None, files: Any = None) -> int:
    """Delete the stored files of expired reports (or of ``files``, a ``ReportFile``
    queryset, whatever their expiry); their rows stay, with ``expired_at`` set."""
    now = now or timezone.now()
    expired = 0
    if files is None:
        files = ReportFile.objects.expired_by(now)
    for report_file in files.filter(expired_at__isnull=True).exclude(stored_name="").order_by("pk"):
        delete_stored(report_file.stored_name)
        ReportFile.objects.filter(pk=report_file.pk).update(expired_at=now)
        expired += 1
    return expired
