"""Reports generated in the background: see :mod:`wagtail_tasks.reports.base` for the API."""

from wagtail_tasks.reports.base import (
    Report,
    WagtailReport,
    get_report_class,
    register_report,
    reports_for,
    unregister_report,
)

__all__ = [
    "Report",
    "WagtailReport",
    "get_report_class",
    "register_report",
    "reports_for",
    "unregister_report",
]
