"""Report files against a hostile user and a careless developer.

Each test names what it tries. Those marked "Regression" failed before their fix; the others
pin down behaviour that held already and must keep holding.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage
from django.test import Client
from django.urls import reverse
from openpyxl import load_workbook

from tests.factories import PlainPageFactory, SuperuserFactory, UserFactory, editor
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.reports import Report, register_report, unregister_report
from wagtail_tasks.reports import files as report_files
from wagtail_tasks.reports import tasks as report_tasks
from wagtail_tasks.reports.models import ReportFile
from wagtail_tasks.testing import enqueued, run_enqueued

pytestmark = pytest.mark.django_db

FORMULA = "=cmd|' /C calc'!A0"


class RowsReport(Report):
    """Rows set by the test; superusers only."""

    name = "hostile-rows"
    title = "Rows"
    list_export = ["a", "b"]
    rows: list[tuple] = []

    def get_queryset(self):
        return [SimpleNamespace(a=a, b=b) for a, b in self.rows]


@pytest.fixture
def rows_report():
    RowsReport.rows = [("first", 1)]
    register_report(RowsReport)
    yield RowsReport
    unregister_report(RowsReport.name)
    RowsReport.title = "Rows"


@pytest.fixture
def superuser(client):
    user = SuperuserFactory(username="boss")
    client.force_login(user)
    return user


def report_url(name: str) -> str:
    return reverse("wagtail_tasks_reports:report", args=[name])


def ask(client, name: str, data: dict, capture) -> ReportFile:
    """POST the report form as the browser does; the task is enqueued (dummy backend)."""
    with capture(execute=True):
        response = client.post(report_url(name), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return ReportFile.objects.order_by("-pk").first()


def generate(client, name: str, data: dict, capture) -> ReportFile:
    report_file = ask(client, name, data, capture)
    run_enqueued()
    report_file.refresh_from_db()
    report_file.record.refresh_from_db()
    return report_file


def download(client, report_file: ReportFile):
    response = client.get(reverse("wagtail_tasks_reports:download", args=[report_file.pk]))
    assert response.status_code == 200, response
    return response, b"".join(response.streaming_content)


def stored_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


# XLSX ------------------------------------------------------------------------------------


def test_xlsx_sheet_title_with_characters_excel_forbids(
    client, superuser, rows_report, dummy_tasks, django_capture_on_commit_callbacks
):
    """Regression: a title with ``[]:*?/\\`` failed every XLSX file of the report."""
    RowsReport.title = "Drafts: news/events [old] *?\\ and more words than 31"
    report_file = generate(
        client, RowsReport.name, {"format": "xlsx"}, django_capture_on_commit_callbacks
    )
    assert report_file.record.status == TaskStatus.SUCCEEDED, report_file.record.error
    _, body = download(client, report_file)
    sheet = load_workbook(io.BytesIO(body)).active
    assert sheet.title == "Drafts  news events  old      a"  # 31 characters
    assert [row for row in sheet.iter_rows(values_only=True)] == [("A", "B"), ("first", 1)]


def test_xlsx_sheet_title_of_only_forbidden_characters(
    client, superuser, rows_report, dummy_tasks, django_capture_on_commit_callbacks
):
    RowsReport.title = "'/?'"
    report_file = generate(
        client, RowsReport.name, {"format": "xlsx"}, django_capture_on_commit_callbacks
    )
    _, body = download(client, report_file)
    assert load_workbook(io.BytesIO(body)).active.title == "Sheet1"


def test_xlsx_cells_with_control_characters(
    client, superuser, rows_report, dummy_tasks, django_capture_on_commit_callbacks
):
    """Regression: one value with a control character (a title pasted with a vertical tab)
    made openpyxl raise, and the whole file failed."""
    RowsReport.rows = [("Pasted\x0bfrom Word\x1b", "bell\x07")]
    report_file = generate(
        client, RowsReport.name, {"format": "xlsx"}, django_capture_on_commit_callbacks
    )
    assert report_file.record.status == TaskStatus.SUCCEEDED, report_file.record.error
    _, body = download(client, report_file)
    rows = list(load_workbook(io.BytesIO(body)).active.iter_rows(values_only=True))
    assert rows[1] == ("Pastedfrom Word", "bell")


def test_formulas_stay_text_in_csv_and_xlsx(
    client, superuser, rows_report, dummy_tasks, django_capture_on_commit_callbacks
):
    RowsReport.rows = [(FORMULA, "+1+1"), ("@SUM(A1)", "-2"), ("plain", 3)]
    csv_file = generate(
        client, RowsReport.name, {"format": "csv"}, django_capture_on_commit_callbacks
    )
    _, body = download(client, csv_file)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    assert rows[1:] == [["'" + FORMULA, "'+1+1"], ["'@SUM(A1)", "'-2"], ["plain", "3"]]

    xlsx_file = generate(
        client, RowsReport.name, {"format": "xlsx"}, django_capture_on_commit_callbacks
    )
    _, body = download(client, xlsx_file)
    sheet = load_workbook(io.BytesIO(body)).active
    assert sheet["A2"].value == FORMULA
    assert sheet["A2"].data_type == "s"  # a string, not a formula
    assert sheet["B2"].data_type == "s"


def test_non_ascii_title_and_download_headers(
    client, superuser, rows_report, dummy_tasks, django_capture_on_commit_callbacks
):
    RowsReport.title = "Übersicht – Seiten 日本"
    RowsReport.rows = [("Grüße", "日本語")]
    report_file = generate(
        client, RowsReport.name, {"format": "xlsx"}, django_capture_on_commit_callbacks
    )
    response, body = download(client, report_file)
    assert response["Content-Disposition"].startswith('attachment; filename="hostile-rows-')
    assert "no-store" in response["Cache-Control"]
    sheet = load_workbook(io.BytesIO(body)).active
    assert sheet.title == "Übersicht – Seiten 日本"
    assert sheet["A2"].value == "Grüße"


# Filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "x" * 10_000, "9" * 30, "-5", "1.5", "\x00"])
def test_section_that_is_no_page_id(admin_client, site, value):
    """Regression: ``section=abc`` (a hand-edited link or POST) was a 500: Wagtail's page
    chooser looked the value up as it was to show the form again."""
    url = report_url("content-inventory")
    assert admin_client.post(url, {"format": "csv", "section": value}).status_code == 400
    assert admin_client.get(url, {"section": value}).status_code == 200
    assert not ReportFile.objects.exists()


def test_repeated_and_unknown_values(admin_client, site):
    url = report_url("content-inventory")
    assert admin_client.post(url, {"format": ["csv", "pdf"]}).status_code == 400
    assert admin_client.post(url, {"format": "pdf"}).status_code == 400
    page = PlainPageFactory(parent=site.root_page)
    response = admin_client.post(url, {"format": "csv", "section": ["abc", str(page.pk)]})
    assert response.status_code == 302  # the last value counts, as everywhere in Django
    assert ReportFile.objects.get().filters["section"] == ["abc", str(page.pk)]


def test_only_filter_fields_are_stored(admin_client, site):
    """Regression: any key of a hand-made POST was stored with the file (and put in its
    "Generate again" links): 1000 keys of 2.5 MB each row, if one liked."""
    response = admin_client.post(
        report_url("content-inventory"),
        {
            "format": "csv",
            "junk": "y" * 10_000,
            "live": "true",
            "last_published_at_after": "2020-01-01",
            "csrfmiddlewaretoken": "x",
        },
    )
    assert response.status_code == 302
    assert ReportFile.objects.get().filters == {
        "live": ["true"],
        "last_published_at_after": ["2020-01-01"],
    }


def test_notification_id_too_big(admin_client, site):
    """Regression: a 30-digit notification id passed the form and failed in the worker
    ("Python int too large to convert to SQLite INTEGER")."""
    url = report_url("failed-deliveries")
    for value in ("9" * 30, "0", "1.5"):
        response = admin_client.post(url, {"format": "csv", "notification": value})
        assert response.status_code == 400, value
    assert admin_client.post(url, {"format": "csv", "notification": "12"}).status_code == 302


def test_unregistered_report_name(admin_client):
    assert admin_client.get(report_url("no-such-report")).status_code == 404
    assert admin_client.post(report_url("no-such-report"), {"format": "csv"}).status_code == 404


# Whose file --------------------------------------------------------------------------------


@pytest.fixture
def two_editors():
    """Two editors who may both run the notification reports."""
    alice = editor("view_taskrecord")
    mallory = UserFactory(username="mallory")
    group = Group.objects.create(name="mallory")
    group.permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="view_taskrecord"),
    )
    mallory.groups.add(group)
    return alice, mallory


def test_other_users_file_ids(client, two_editors, site, dummy_tasks):
    alice, mallory = two_editors
    client.force_login(alice)
    client.post(report_url("notification-deliveries"), {"format": "csv"})
    report_file = ReportFile.objects.get()

    client.force_login(mallory)
    for name in ("file", "file_status", "download"):
        url = reverse(f"wagtail_tasks_reports:{name}", args=[report_file.pk])
        assert client.get(url).status_code == 403, name
    cancel = reverse("wagtail_tasks_reports:cancel", args=[report_file.pk])
    assert client.post(cancel).status_code == 403
    missing = reverse("wagtail_tasks_reports:file", args=[report_file.pk + 99])
    assert client.get(missing).status_code == 404
    report_file.record.refresh_from_db()
    assert report_file.record.status == TaskStatus.QUEUED
    index = client.get(reverse("wagtail_tasks_reports:index")).content.decode()
    assert f'data-report-file="{report_file.pk}"' not in index


def test_cancel_needs_post_and_csrf(client, superuser, rows_report, dummy_tasks):
    client.post(report_url(RowsReport.name), {"format": "csv"})
    report_file = ReportFile.objects.get()
    cancel = reverse("wagtail_tasks_reports:cancel", args=[report_file.pk])
    assert client.get(cancel).status_code == 405
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(superuser)
    assert csrf_client.post(cancel).status_code == 403
    report_file.record.refresh_from_db()
    assert report_file.record.status == TaskStatus.QUEUED


# Between asking and running -------------------------------------------------------------------


def test_report_unregistered_before_it_runs(
    client, superuser, rows_report, dummy_tasks, django_capture_on_commit_callbacks
):
    report_file = ask(
        client, RowsReport.name, {"format": "csv"}, django_capture_on_commit_callbacks
    )
    unregister_report(RowsReport.name)
    run_enqueued()
    report_file.record.refresh_from_db()
    assert report_file.record.status == TaskStatus.FAILED
    assert "no longer available" in report_file.record.message


def test_user_deactivated_before_it_runs(
    client, superuser, rows_report, dummy_tasks, django_capture_on_commit_callbacks
):
    report_file = ask(
        client, RowsReport.name, {"format": "csv"}, django_capture_on_commit_callbacks
    )
    superuser.is_active = False
    superuser.save()
    run_enqueued()
    report_file.refresh_from_db()
    report_file.record.refresh_from_db()
    assert report_file.record.status == TaskStatus.FAILED
    assert "may no longer run" in report_file.record.message
    assert report_file.stored_name == ""


def test_filtered_page_deleted_before_it_runs(
    client, superuser, site, dummy_tasks, django_capture_on_commit_callbacks
):
    page = PlainPageFactory(parent=site.root_page)
    data = {"format": "csv", "section": page.pk}
    report_file = ask(client, "content-inventory", data, django_capture_on_commit_callbacks)
    page.delete()
    run_enqueued()
    report_file.record.refresh_from_db()
    assert report_file.record.status == TaskStatus.FAILED
    assert report_file.record.message.startswith("The filters are not valid any more: section")
    # Its "Generate again" link opens the form with the error, not a server error.
    response = client.get(f"{report_url('content-inventory')}?{report_file.filters_query}")
    assert response.status_code == 200


def test_task_arguments_are_ids_only(
    client, superuser, site, dummy_tasks, django_capture_on_commit_callbacks
):
    subscriber_filter = {"format": "csv", "status": "confirmed", "created_at_after": "2020-01-01"}
    report_file = ask(client, "subscribers", subscriber_filter, django_capture_on_commit_callbacks)
    record = TaskRecord.objects.get()
    assert record.args == []
    (task,) = enqueued(kind=record.kind)
    assert task.args == [record.pk]
    assert report_file.filters["status"] == ["confirmed"]  # filters are on the file's row


# Storage ------------------------------------------------------------------------------------


class FailingSave(FileSystemStorage):
    def save(self, name, content, max_length=None):
        raise OSError("No space left on device")


class FailingSize(FileSystemStorage):
    def size(self, name):
        raise OSError("Connection reset")


def test_storage_that_raises_on_save(
    client, superuser, rows_report, dummy_tasks, django_capture_on_commit_callbacks,
    report_dir, monkeypatch,
):  # fmt: skip
    monkeypatch.setattr(report_files, "report_storage", lambda: FailingSave(report_dir))
    report_file = generate(
        client, RowsReport.name, {"format": "csv"}, django_capture_on_commit_callbacks
    )
    assert report_file.record.status == TaskStatus.FAILED
    assert report_file.record.message == "No space left on device"
    assert report_file.stored_name == ""
    assert stored_files(report_dir) == []


def test_stored_file_is_deleted_when_it_cannot_be_recorded(
    client, superuser, rows_report, dummy_tasks, django_capture_on_commit_callbacks,
    report_dir, monkeypatch,
):  # fmt: skip
    """Regression: a failure after the file was stored (its size, the database) left it in
    the storage with no row pointing at it, so that nothing ever expired it."""
    storage = FailingSize(report_dir)
    monkeypatch.setattr(report_files, "report_storage", lambda: storage)
    monkeypatch.setattr(report_tasks, "report_storage", lambda: storage)
    report_file = generate(
        client, RowsReport.name, {"format": "csv"}, django_capture_on_commit_callbacks
    )
    assert report_file.record.status == TaskStatus.FAILED
    assert report_file.stored_name == ""
    assert stored_files(report_dir) == []


def test_report_files_are_never_public_media(settings, tmp_path):
    """Regression (careless set-up): ``WAGTAIL_TASKS_REPORT_STORAGE = "default"`` put report
    files, subscribers' addresses included, in MEDIA_ROOT."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.WAGTAIL_TASKS_REPORT_STORAGE = None  # the default: a folder beside MEDIA_ROOT
    location = Path(report_files.report_storage().location)
    assert not location.is_relative_to(tmp_path / "media")
    assert location == tmp_path / "wagtail_tasks_private" / "reports"

    settings.WAGTAIL_TASKS_REPORT_STORAGE = "default"
    with pytest.raises(ImproperlyConfigured, match="MEDIA_ROOT"):
        report_files.report_storage()


# The registry -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Über-report", "a/b", "two words", "x" * 65, "a.b"])
def test_report_name_must_be_a_url_part(name):
    """Regression: such a name registered, then its Reports menu item could not be reversed
    and every admin page failed (NoReverseMatch)."""

    class Careless(RowsReport):
        pass

    Careless.name = name
    with pytest.raises(ValueError, match="letters, digits"):
        register_report(Careless)
    assert admin_pages_work()


def admin_pages_work() -> bool:
    client = Client()
    client.force_login(SuperuserFactory(username="checker"))
    return client.get(reverse("wagtailadmin_home")).status_code == 200


def test_a_second_report_with_a_taken_name_is_refused(rows_report):
    """Registering another class under a taken name would silently hide the first one."""

    class Impostor(RowsReport):
        title = "Impostor"

    with pytest.raises(ValueError, match="already registered"):
        register_report(Impostor)
    assert report_tasks.get_report_class("hostile-rows") is RowsReport
    assert register_report(RowsReport) is RowsReport  # the same class again is harmless

    unregister_report("hostile-rows")
    assert register_report(Impostor) is Impostor  # replacing on purpose
    unregister_report("hostile-rows")
    register_report(RowsReport)


def test_a_filename_of_a_developers_choice_is_made_safe(rows_report, superuser, client):
    rows_report.get_filename = lambda self: "../../etc/Q3 report: drafts"
    try:
        response = client.post(report_url("hostile-rows"), {"format": "csv"})
    finally:
        del rows_report.get_filename
    assert response.status_code == 302
    report_file = ReportFile.objects.get()
    assert report_file.filename.startswith("etcQ3_report_drafts-")
    assert report_file.filename.endswith(".csv")
    assert "/" not in report_file.filename
