"""Wagtail's own reports generated in the background."""

from django.http import QueryDict
from openpyxl import load_workbook

from tests.conftest import publish
from wagtail_tasks.models import TaskStatus
from wagtail_tasks.reports.base import get_report_class
from wagtail_tasks.reports.files import report_storage
from wagtail_tasks.reports.tasks import request_report


def test_aging_pages_file_lists_published_pages_with_their_publisher(
    article, admin_user, django_capture_on_commit_callbacks
):
    # Wagtail's Aging pages decorates its rows with .values_list(): it needs a QuerySet.
    publish(article, user=admin_user)
    report = get_report_class("aging-pages")(admin_user).bind(QueryDict())
    with django_capture_on_commit_callbacks(execute=True):
        report_file = request_report(report, "xlsx")
    report_file.refresh_from_db()
    assert report_file.record.status == TaskStatus.SUCCEEDED, report_file.record.error
    with report_storage().open(report_file.stored_name, "rb") as stored:
        rows = list(load_workbook(stored, read_only=True).active.iter_rows(values_only=True))
    assert [(row[0], row[3]) for row in rows[1:]] == [("Big news", admin_user.get_username())]
