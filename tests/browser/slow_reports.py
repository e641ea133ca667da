"""Slowed reports for the browser test, in the test process and in its worker process.

A real report on a test database finishes in a blink: the browser would only ever see its
end. Here a chunk is small and takes a moment, so the file page can be watched in between.

tests/browser/report_worker.py starts the worker with the same slowed reports.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

from wagtail_tasks.reports import Report

SLOW_ROWS = 2000
SLOW_CHUNK_SECONDS = 0.2
INVENTORY_CHUNK = 10
INVENTORY_CHUNK_SECONDS = 0.3


class SlowReport(Report):
    """One row per chunk, each a moment's work: runs for minutes unless cancelled."""

    name = "slow-test"
    title = "Slow test report"
    chunk_size = 1
    list_export = ["n", "label"]

    def get_queryset(self):
        return [SimpleNamespace(n=n, label=f"Row {n}") for n in range(SLOW_ROWS)]

    def decorate_chunk(self, objects):
        time.sleep(SLOW_CHUNK_SECONDS)
        return objects


def slow_down_content_inventory() -> None:
    """The built-in content inventory, in chunks of 10 pages that take 0.3 s each."""
    from wagtail_tasks.reports.builtin import ContentInventoryReport

    if getattr(ContentInventoryReport, "_slowed", False):
        return
    decorate = ContentInventoryReport.decorate_chunk

    def slow_decorate(self, pages):
        time.sleep(INVENTORY_CHUNK_SECONDS)
        return decorate(self, pages)

    ContentInventoryReport.chunk_size = INVENTORY_CHUNK
    ContentInventoryReport.decorate_chunk = slow_decorate
    ContentInventoryReport._slowed = True
