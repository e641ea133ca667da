"""Helpers for the report tests: ask for a file through the admin form, read it back."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.urls import reverse

from wagtail_tasks.reports.models import ReportFile

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def report_url(name: str) -> str:
    return reverse("wagtail_tasks_reports:report", args=[name])


def file_url(view: str, report_file: ReportFile | int) -> str:
    pk = report_file if isinstance(report_file, int) else report_file.pk
    return reverse(f"wagtail_tasks_reports:{view}", args=[pk])


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    """A block whose enqueues after commit run at once (the immediate backend)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def generate(run_tasks):
    """POST the report's form as the client's user and run the task; returns the ReportFile.

    ``data`` is the form's filters (a dict of values or lists of values)."""

    def generate(client, name: str, data: dict[str, Any] | None = None, fmt: str = "csv"):
        before = set(ReportFile.objects.values_list("pk", flat=True))
        with run_tasks():
            response = client.post(report_url(name), {**(data or {}), "format": fmt})
        assert response.status_code == 302, response.content.decode()[-3000:]
        report_file = ReportFile.objects.exclude(pk__in=before).select_related("record").get()
        assert response["Location"] == file_url("file", report_file)
        return report_file

    return generate


def read_csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))


def read_xlsx(content: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(content))  # not read-only: rows padded to the width
    sheet = workbook.worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    workbook.close()
    return rows


def downloaded(client, report_file: ReportFile) -> bytes:
    """The file's bytes as the download view serves them, after checking the response."""
    response = client.get(file_url("download", report_file))
    assert response.status_code == 200, response.content[:2000]
    report_file.refresh_from_db()
    content = b"".join(response.streaming_content)
    assert response["Content-Type"] == report_file.content_type
    assert response["Content-Disposition"] == f'attachment; filename="{report_file.filename}"'
    assert {"private", "no-store"} <= set(response["Cache-Control"].split(", "))
    assert len(content) == report_file.size
    return content


def rows_of(client, report_file: ReportFile) -> list[list[Any]]:
    """Heading row first, then the data rows, from the downloaded file (CSV or XLSX)."""
    content = downloaded(client, report_file)
    rows = read_csv(content) if report_file.format == "csv" else read_xlsx(content)
    assert len(rows) - 1 == report_file.rows
    return rows


def as_dicts(rows: list[list[Any]]) -> list[dict[str, Any]]:
    headings, *data = rows
    return [dict(zip(headings, row, strict=True)) for row in data]
