"""``python -m tests.browser.report_worker db_worker ...``: a management command (the worker)
with the slowed reports of tests/browser/slow_reports.py registered, and progress written
after every chunk."""

import os
import sys

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()  # before the reports are imported: they import Wagtail's models
    from django.conf import settings
    from django.core.management import execute_from_command_line

    from tests.browser.slow_reports import SlowReport, slow_down_content_inventory
    from wagtail_tasks.reports import register_report

    settings.WAGTAIL_TASKS_PROGRESS_INTERVAL = 0
    register_report(SlowReport)
    slow_down_content_inventory()
    execute_from_command_line(["django", *sys.argv[1:]])


if __name__ == "__main__":
    main()
