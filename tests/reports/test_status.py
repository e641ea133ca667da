"""The file page's live status: JSON for the polling controller."""

import pytest

from tests.reports.conftest import file_url, report_url
from wagtail_tasks.reports.models import ReportFile
from wagtail_tasks.testing import run_enqueued

pytestmark = pytest.mark.django_db


def status(client, report_file):
    response = client.get(file_url("file_status", report_file))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"].split(", ")
    data = response.json()
    assert set(data) == {"html", "active"}
    return data


def test_status_is_active_until_the_file_is_ready(admin_client, site, dummy_tasks, run_tasks):
    with run_tasks():
        admin_client.post(report_url("content-inventory"), {"format": "xlsx"})
    report_file = ReportFile.objects.get()

    waiting = status(admin_client, report_file)
    assert waiting["active"] is True
    assert 'data-status="queued"' in waiting["html"]
    assert "Waiting for a worker" in waiting["html"]
    assert "wagtail-tasks-report-cancel" in waiting["html"]
    page = admin_client.get(file_url("file", report_file)).content.decode()
    assert 'data-wagtail-tasks-panel-active="true"' in page
    assert f'data-wagtail-tasks-panel-url-value="{file_url("file_status", report_file)}"' in page

    run_enqueued()
    done = status(admin_client, report_file)
    report_file.refresh_from_db()
    assert done["active"] is False
    assert 'data-status="succeeded"' in done["html"] and 'data-ready="true"' in done["html"]
    assert f'href="{file_url("download", report_file)}"' in done["html"]
    assert f'data-rows="{report_file.rows}"' in done["html"]
    assert "wagtail-tasks-report-cancel" not in done["html"]
    page = admin_client.get(file_url("file", report_file)).content.decode()
    assert 'data-wagtail-tasks-panel-active="false"' in page


def test_status_of_a_cancelled_report_is_not_active(admin_client, site, dummy_tasks, run_tasks):
    with run_tasks():
        admin_client.post(report_url("subscribers"), {"format": "csv"})
    report_file = ReportFile.objects.get()
    admin_client.post(file_url("cancel", report_file))
    data = status(admin_client, report_file)
    assert data["active"] is False
    assert 'data-status="cancelled"' in data["html"] and "Cancelled by admin" in data["html"]


def test_generate_again_while_the_same_file_is_being_made_opens_that_file(
    admin_client, site, dummy_tasks, run_tasks
):
    def ask(fmt="csv", live="true"):
        with run_tasks():
            response = admin_client.post(
                report_url("content-inventory"), {"format": fmt, "live": live}
            )
        assert response.status_code == 302
        return response["Location"]

    first = ask()
    assert ask() == first  # a double click
    assert ReportFile.objects.count() == 1
    assert ask(fmt="xlsx") != first  # another format, another file
    assert ask(live="false") != first  # other filters, another file
    assert ReportFile.objects.count() == 3

    run_enqueued()
    assert ask() != first  # once it is finished, Generate makes a new one
    assert ReportFile.objects.count() == 4
