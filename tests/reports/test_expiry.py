"""How long report files are kept, and pruning: the file goes, the row stays (marked expired)."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.reports.conftest import downloaded, file_url
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.reports.files import report_storage
from wagtail_tasks.reports.models import ReportFile
from wagtail_tasks.retention import prune

pytestmark = pytest.mark.django_db


def stored_files(folder):
    return [path for path in folder.rglob("*") if path.is_file()]


def test_files_expire_after_keep_reports_for_days(admin_client, site, generate, settings):
    settings.WAGTAIL_TASKS_KEEP_REPORTS_FOR = 2
    before = timezone.now()
    report_file = generate(admin_client, "content-inventory")
    report_file.refresh_from_db()
    after = timezone.now()
    assert before + timedelta(days=2) <= report_file.expires_at <= after + timedelta(days=2)
    page = admin_client.get(file_url("file", report_file)).content.decode()
    assert f"<dt>Expires</dt><dd>{report_file.expires_at:%Y-%m-%d %H:%M}</dd>" in page


def test_prune_deletes_expired_files_and_keeps_their_rows(
    admin_client, site, generate, settings, report_dir
):
    settings.WAGTAIL_TASKS_KEEP_REPORTS_FOR = 2
    old = generate(admin_client, "content-inventory")
    new = generate(admin_client, "subscribers", fmt="xlsx")
    ReportFile.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert len(stored_files(report_dir)) == 2

    pruned = prune()
    assert pruned.report_files == 1
    old.refresh_from_db()
    new.refresh_from_db()
    assert not report_storage().exists(old.stored_name)
    assert report_storage().exists(new.stored_name)
    assert len(stored_files(report_dir)) == 1
    assert old.expired_at is not None and old.is_expired and not old.is_ready
    assert old.rows is not None and old.stored_name  # what it was stays on the row
    assert TaskRecord.objects.get(pk=old.record_id).status == TaskStatus.SUCCEEDED
    assert admin_client.get(file_url("download", old)).status_code == 410
    assert downloaded(admin_client, new)[:2] == b"PK"
    index = admin_client.get("/admin/reports/background/").content.decode()
    assert index.count("<td>Expired</td>") == 1

    assert prune().report_files == 0  # once


def test_the_prune_command_does_it_on_the_days_schedule(
    admin_client, site, generate, settings, report_dir
):
    settings.WAGTAIL_TASKS_KEEP_REPORTS_FOR = 1
    report_file = generate(admin_client, "content-inventory")
    out = io.StringIO()
    call_command("wagtail_tasks_prune", stdout=out)
    assert "Deleted 0 expired report file(s)" in out.getvalue()
    assert len(stored_files(report_dir)) == 1

    ReportFile.objects.filter(pk=report_file.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    call_command("wagtail_tasks_prune", stdout=out)
    assert "Deleted 1 expired report file(s)" in out.getvalue()
    assert stored_files(report_dir) == []
    assert ReportFile.objects.get(pk=report_file.pk).expired_at is not None


def test_keep_reports_for_none_keeps_them(admin_client, site, generate, settings, report_dir):
    settings.WAGTAIL_TASKS_KEEP_REPORTS_FOR = None
    settings.WAGTAIL_TASKS_KEEP_TASKS_FOR = None  # (a pruned tracking row takes its file along)
    report_file = generate(admin_client, "content-inventory")
    report_file.refresh_from_db()
    assert report_file.expires_at is None and report_file.is_ready
    assert prune(now=timezone.now() + timedelta(days=3650)).report_files == 0
    assert len(stored_files(report_dir)) == 1
    assert admin_client.get(file_url("download", report_file)).status_code == 200


def test_a_file_whose_tracking_row_is_pruned_goes_with_it(
    admin_client, site, generate, settings, report_dir
):
    settings.WAGTAIL_TASKS_KEEP_REPORTS_FOR = None  # kept longer than its tracking row
    settings.WAGTAIL_TASKS_KEEP_TASKS_FOR = 30
    report_file = generate(admin_client, "content-inventory")
    TaskRecord.objects.filter(pk=report_file.record_id).update(
        finished_at=timezone.now() - timedelta(days=31)
    )
    pruned = prune()
    assert (pruned.report_files, pruned.tasks) == (1, 1)
    assert not ReportFile.objects.filter(pk=report_file.pk).exists()
    assert stored_files(report_dir) == []
