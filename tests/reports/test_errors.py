"""Bad input, reports that fail half way, and files that are gone."""

import tempfile
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from tests.reports.conftest import file_url, report_url
from wagtail_tasks.models import TaskStatus
from wagtail_tasks.reports import Report, register_report, unregister_report
from wagtail_tasks.reports.files import report_storage
from wagtail_tasks.reports.models import ReportFile
from wagtail_tasks.testing import run_enqueued

pytestmark = pytest.mark.django_db


def stored_files(folder):
    return [path for path in folder.rglob("*") if path.is_file()]


# Bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"content_type": "999999", "format": "csv"}, "content_type", "Select a valid choice"),
        ({"last_published_at_from": "soon", "format": "csv"}, "last_published_at", "valid date"),
        ({"live": "true", "format": "pdf"}, "format", "Select a valid choice"),
        ({"live": "true"}, "format", "This field is required"),
    ],
)
def test_invalid_input_is_a_400_with_the_error_and_no_file(
    admin_client, site, run_tasks, data, field, message
):
    with run_tasks():
        response = admin_client.post(report_url("content-inventory"), data)
    assert response.status_code == 400
    content = response.content.decode()
    assert message in content
    errors = {**response.context["filter_form"].errors, **response.context["format_form"].errors}
    assert list(errors) == [field]
    assert not ReportFile.objects.exists()


def test_every_error_shows_at_once(admin_client, site):
    response = admin_client.post(report_url("content-inventory"), {"content_type": "999999"})
    assert response.status_code == 400
    errors = response.context["format_form"].errors, response.context["filter_form"].errors
    assert "format" in errors[0] and "content_type" in errors[1]


def test_an_unknown_report_is_404(admin_client, site):
    assert admin_client.get(report_url("no-such-report")).status_code == 404
    assert admin_client.post(report_url("no-such-report"), {"format": "csv"}).status_code == 404
    assert admin_client.get(file_url("file", 999999)).status_code == 404
    assert admin_client.get(file_url("download", 999999)).status_code == 404


# A report that fails half way --------------------------------------------------------------


class RowsRanOut(Exception):
    pass


@pytest.fixture
def broken_report():
    """Superusers only; writes two chunks of rows and then raises."""

    @register_report
    class BrokenReport(Report):
        name = "tests-broken"
        title = "Broken"
        chunk_size = 2
        list_export = ["n", "label"]

        def get_queryset(self):
            for n in range(5):
                yield SimpleNamespace(n=n, label=f"row {n}")
            raise RowsRanOut("the rows ran out at 5")

    yield BrokenReport
    unregister_report("tests-broken")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_report_that_raises_leaves_a_visible_error_and_no_file(
    admin_client, broken_report, run_tasks, report_dir, tmp_path, monkeypatch, fmt
):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with run_tasks():
        response = admin_client.post(report_url("tests-broken"), {"format": fmt})
    report_file = ReportFile.objects.get()
    assert response["Location"] == file_url("file", report_file)
    record = report_file.record
    assert record.status == TaskStatus.FAILED
    assert record.error.startswith("RowsRanOut: the rows ran out at 5")
    assert record.progress_done == 4  # two chunks were written before it failed
    assert report_file.stored_name == "" and report_file.size is None and report_file.rows is None
    assert stored_files(report_dir) == []
    assert list(scratch.iterdir()) == []  # nor half a file in the temporary folder
    page = admin_client.get(file_url("file", report_file)).content.decode()
    assert "RowsRanOut: the rows ran out at 5" in page
    assert 'data-status="failed"' in page and 'data-ready="false"' in page
    assert "wagtail-tasks-report-download" not in page
    download = admin_client.get(file_url("download", report_file))
    assert download.status_code == 302 and download["Location"] == file_url("file", report_file)


def test_a_report_removed_before_the_worker_runs_fails_with_a_reason(
    admin_client, broken_report, dummy_tasks, run_tasks
):
    with run_tasks():
        admin_client.post(report_url("tests-broken"), {"format": "csv"})
    unregister_report("tests-broken")
    run_enqueued()
    record = ReportFile.objects.get().record
    record.refresh_from_db()
    assert record.status == TaskStatus.FAILED
    assert "The report 'tests-broken' is no longer available on this site." in record.error


def test_filters_that_became_invalid_fail_with_a_reason(
    admin_client, section, article, dummy_tasks, run_tasks, report_dir
):
    with run_tasks():
        response = admin_client.post(
            report_url("content-inventory"), {"section": article.pk, "format": "csv"}
        )
    assert response.status_code == 302
    article.delete()  # the chosen page is gone before the worker runs
    run_enqueued()
    report_file = ReportFile.objects.get()
    record = report_file.record
    record.refresh_from_db()
    assert record.status == TaskStatus.FAILED
    assert "The filters are not valid any more: section:" in record.error
    assert stored_files(report_dir) == []


# Files that are gone ----------------------------------------------------------------------


@pytest.fixture
def ready_file(admin_client, site, generate):
    report_file = generate(admin_client, "content-inventory")
    report_file.refresh_from_db()
    assert report_file.is_ready
    assert report_storage().exists(report_file.stored_name)
    return report_file


def assert_expired_page(response, report_file):
    assert response.status_code == 410
    content = response.content.decode()
    assert "This report file has expired" in content
    assert f'href="{report_url(report_file.report_name)}?' in content  # "Generate it again"


def test_a_file_deleted_from_the_storage_is_410_expired(admin_client, ready_file):
    report_storage().delete(ready_file.stored_name)
    assert_expired_page(admin_client.get(file_url("download", ready_file)), ready_file)


def test_a_file_past_its_expiry_is_410_even_if_still_stored(admin_client, ready_file):
    ReportFile.objects.filter(pk=ready_file.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert report_storage().exists(ready_file.stored_name)
    assert_expired_page(admin_client.get(file_url("download", ready_file)), ready_file)
    page = admin_client.get(file_url("file", ready_file)).content.decode()
    assert "<strong>Expired</strong>" in page
    assert "wagtail-tasks-report-download" not in page


def test_a_file_not_ready_yet_sends_to_its_page(admin_client, site, dummy_tasks, run_tasks):
    with run_tasks():
        admin_client.post(report_url("content-inventory"), {"format": "csv"})
    report_file = ReportFile.objects.get()
    response = admin_client.get(file_url("download", report_file))
    assert response.status_code == 302 and response["Location"] == file_url("file", report_file)
