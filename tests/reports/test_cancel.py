"""Cancelling a report: before it runs, while it runs, and after it finished."""

import re
import tempfile
from types import SimpleNamespace

import pytest
from django.test import Client

from tests.factories import SuperuserFactory
from tests.reports.conftest import downloaded, file_url, report_url
from wagtail_tasks.models import TaskStatus
from wagtail_tasks.reports import Report, register_report, unregister_report
from wagtail_tasks.reports.models import ReportFile
from wagtail_tasks.reports.tasks import cancel_report
from wagtail_tasks.testing import enqueued, run_enqueued

pytestmark = pytest.mark.django_db


def stored_files(folder):
    return [path for path in folder.rglob("*") if path.is_file()]


@pytest.fixture
def queued_file(admin_client, site, dummy_tasks, run_tasks):
    """A content inventory waiting in the dummy backend (no worker)."""
    with run_tasks():
        admin_client.post(report_url("content-inventory"), {"format": "csv"})
    report_file = ReportFile.objects.select_related("record").get()
    assert report_file.record.status == TaskStatus.QUEUED
    assert len(enqueued(kind="reports.generate")) == 1
    return report_file


def test_cancel_a_queued_report_and_it_never_runs(admin_client, queued_file, report_dir):
    page = admin_client.get(file_url("file", queued_file)).content.decode()
    assert "wagtail-tasks-report-cancel" in page  # the button, while it has not finished
    response = admin_client.post(file_url("cancel", queued_file), follow=True)
    assert response.redirect_chain == [(file_url("file", queued_file), 302)]
    content = response.content.decode()
    assert "The report was cancelled." in content
    assert "wagtail-tasks-report-cancel" not in content
    record = queued_file.record
    record.refresh_from_db()
    assert record.status == TaskStatus.CANCELLED
    assert record.message == "Cancelled by admin"

    run_enqueued()  # the worker gets to it later: nothing happens
    record.refresh_from_db()
    queued_file.refresh_from_db()
    assert record.status == TaskStatus.CANCELLED and record.started_at is None
    assert queued_file.stored_name == "" and queued_file.rows is None
    assert stored_files(report_dir) == []


def test_cancel_needs_post_and_a_csrf_token(queued_file):
    client = Client(enforce_csrf_checks=True)
    client.force_login(SuperuserFactory(username="careful"))
    url = file_url("cancel", queued_file)
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403  # no token
    queued_file.record.refresh_from_db()
    assert queued_file.record.status == TaskStatus.QUEUED
    page = client.get(file_url("file", queued_file)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post(url, {"csrfmiddlewaretoken": token}).status_code == 302
    queued_file.record.refresh_from_db()
    assert queued_file.record.status == TaskStatus.CANCELLED


@pytest.fixture
def cancelled_midway():
    """Superusers only; its rows cancel the report after the first chunk is written."""

    @register_report
    class SelfCancellingReport(Report):
        name = "tests-self-cancelling"
        title = "Self-cancelling"
        chunk_size = 2
        list_export = ["n"]
        read: list[int] = []

        def get_queryset(self):
            for n in range(10):
                if n == 3:  # the second chunk is being read: someone presses Cancel
                    cancel_report(ReportFile.objects.get(report_name=self.name), self.user)
                self.read.append(n)
                yield SimpleNamespace(n=n)

    yield SelfCancellingReport
    unregister_report("tests-self-cancelling")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_cancel_while_it_runs_stops_it_and_keeps_no_file(
    admin_client, site, cancelled_midway, run_tasks, report_dir, tmp_path, monkeypatch, fmt
):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with run_tasks():
        admin_client.post(report_url("tests-self-cancelling"), {"format": fmt})
    report_file = ReportFile.objects.get()
    record = report_file.record
    record.refresh_from_db()
    assert record.status == TaskStatus.CANCELLED
    assert record.message == "Cancelled by admin"
    assert cancelled_midway.read == [0, 1, 2, 3]  # stopped after the chunk that saw the cancel
    assert report_file.stored_name == "" and report_file.size is None
    assert stored_files(report_dir) == []
    assert list(scratch.iterdir()) == []  # the temporary file is gone too
    page = admin_client.get(file_url("file", report_file)).content.decode()
    assert 'data-status="cancelled"' in page and "wagtail-tasks-report-download" not in page


def test_cancel_after_success_says_already_finished_and_keeps_the_file(
    admin_client, site, generate, report_dir
):
    report_file = generate(admin_client, "content-inventory")
    response = admin_client.post(file_url("cancel", report_file), follow=True)
    assert "The report had already finished." in response.content.decode()
    report_file.record.refresh_from_db()
    assert report_file.record.status == TaskStatus.SUCCEEDED
    assert len(stored_files(report_dir)) == 1
    assert downloaded(admin_client, report_file).startswith(b"ID,Title,URL")
