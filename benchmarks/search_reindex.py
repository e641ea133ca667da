"""Search reindexing: coalescing of a burst of saves, and a full rebuild's time and memory.

(a) One live page is saved 100 times in a burst (well under a second), each save its own
    committed transaction, with no worker running; then a ``db_worker --batch`` drains the
    queue. Counted: reindex tasks enqueued and index writes (one ``add`` per reindex task).
    Then the same burst while a worker already serves the queue (polling every 0.1 s): each
    time it takes the waiting reindex, the next save enqueues one more.
(b) The admin's rebuild (``wagtail_tasks.search.tasks.rebuild_index``) of an index of N pages,
    N = 5,000 and then 20,000, each run by a fresh ``db_worker --batch``: its time per 1,000
    pages and the worker's peak RSS (measured as in ``fanout_memory.py``), which must not grow
    with N. Pages are bulk-inserted (plain ``Page`` rows under the home page, no signals).

    .venv/bin/python benchmarks/search_reindex.py [--sizes 5000,20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402

SAVES = 100
TARGET_BURST_UPDATES = 2
TARGET_GROWTH_MB = 10.0


def add_pages(count: int) -> None:
    """Bulk-insert ``count`` live plain pages under the home page (fast, no signals)."""
    common.add_bulk_pages(common.home_page(), count)


def search_rows(kind: str):
    from wagtail_tasks.models import TaskRecord

    return TaskRecord.objects.filter(kind=kind)


def burst(page, label: str) -> float:
    started = time.perf_counter()
    for i in range(SAVES):
        page.title = f"Burst {label} {i}"
        page.save()  # autocommit: each save is its own committed transaction
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,20000")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]

    common.setup("search_reindex")
    common.print_header(
        "Benchmark: search reindexing (coalescing, rebuild time and worker memory)",
        f"Wagtail's database search backend on SQLite (FTS5); burst of {SAVES} saves; "
        f"rebuild of {', '.join(f'{n:,}' for n in sizes)} pages; "
        "WAGTAIL_TASKS_SEARCH_BATCH_SIZE 200.",
    )
    from django_tasks_db.models import DBTaskResult
    from wagtail.models import Page

    from benchmarks.fanout_memory import run_measured_worker
    from wagtail_tasks.models import TaskStatus
    from wagtail_tasks.search.policy import request_rebuild, request_reindex
    from wagtail_tasks.search.tasks import KIND_REBUILD, KIND_REINDEX

    env = common.worker_env()
    page = common.make_section("Burst page")
    common.start_worker(env, "search_setup").wait()
    DBTaskResult.objects.all().delete()
    search_rows(KIND_REINDEX).delete()

    # (a) a burst of saves, no worker running
    seconds = burst(page, "a")
    enqueued = search_rows(KIND_REINDEX).count()
    worker = common.start_worker(env, "search_burst")
    common.finish_worker(worker)
    updates = search_rows(KIND_REINDEX).filter(
        status=TaskStatus.SUCCEEDED, message="Search index updated"
    )
    found = [p.title for p in Page.objects.live().search("Burst")]
    print(
        f"(a) {SAVES} saves in {seconds:.2f} s, no worker running: {enqueued} reindex task(s) "
        f"enqueued, {updates.count()} index update(s); index holds {found}"
    )
    # The burst's length is reported, not judged: it depends on the machine's load.
    burst_ok = updates.count() <= TARGET_BURST_UPDATES and found == [f"Burst a {SAVES - 1}"]

    # (a') the same burst while a worker serves the queue (it polls every 0.1 s)
    search_rows(KIND_REINDEX).delete()
    worker = common.start_worker(env, "search_burst_live", batch=False)
    # Wait until the worker really serves the queue: it has run a probe reindex of the home page.
    probe = request_reindex(common.home_page().pk, "wagtailcore.Page")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        probe.refresh_from_db()
        if probe.status == TaskStatus.SUCCEEDED:
            break
        time.sleep(0.05)
    assert probe.status == TaskStatus.SUCCEEDED, "the worker did not start"
    search_rows(KIND_REINDEX).delete()
    seconds_live = burst(page, "b")
    time.sleep(2)
    common.stop_worker(worker)
    live_updates = search_rows(KIND_REINDEX).filter(status=TaskStatus.SUCCEEDED).count()
    left = search_rows(KIND_REINDEX).exclude(status=TaskStatus.SUCCEEDED).count()
    print(
        f"(a') {SAVES} saves in {seconds_live:.2f} s while a worker polls every 0.1 s: "
        f"{live_updates} index update(s), {left} not run"
    )

    # (b) rebuilds
    baseline = run_measured_worker(env, "search_idle")
    print(f"    idle worker, empty queue: peak {baseline['peak']:.1f} MB", flush=True)
    results = []
    have = 0
    for size in sizes:
        started = time.perf_counter()
        add_pages(size - have)
        have = size
        print(f"    ({size:,} pages in place after {time.perf_counter() - started:.1f} s)")
        record, _ = request_rebuild()
        measured = run_measured_worker(env, f"search_rebuild_{size}")
        record.refresh_from_db()
        assert record.status == TaskStatus.SUCCEEDED, (record.status, record.error)
        assert record.kind == KIND_REBUILD
        rebuild_s = (record.finished_at - record.started_at).total_seconds()
        objects = record.progress_done
        results.append((size, objects, rebuild_s, measured["peak"]))
        print(
            f"(b) rebuild of {objects:,} objects ({size:,} bulk pages): {rebuild_s:.1f} s, "
            f"{rebuild_s / objects * 1000:.2f} s per 1,000; worker peak RSS "
            f"{measured['peak']:.1f} MB",
            flush=True,
        )
    assert Page.objects.live().search("wombats").count() >= sizes[-1]

    print()
    header = f"{'case':<28}{'objects':>9}{'seconds':>9}{'s/1,000':>9}{'peak RSS MB':>13}"
    print(header)
    print("-" * len(header))
    print(f"{'idle worker (no task)':<28}{'-':>9}{'-':>9}{'-':>9}{baseline['peak']:>13.1f}")
    for size, objects, rebuild_s, peak in results:
        label = f"rebuild, {size:,} pages"
        print(
            f"{label:<28}{objects:>9,}{rebuild_s:>9.1f}"
            f"{rebuild_s / objects * 1000:>9.2f}{peak:>13.1f}"
        )
    growth = results[-1][3] - results[0][3]
    print()
    common.verdict(
        burst_ok,
        f"{SAVES} saves in {seconds:.2f} s -> {updates.count()} index update(s) "
        f"(target <= {TARGET_BURST_UPDATES})",
    )
    common.verdict(
        growth <= TARGET_GROWTH_MB,
        f"rebuild worker peak RSS {results[0][3]:.1f} MB at {results[0][0]:,} pages, "
        f"{results[-1][3]:.1f} MB at {results[-1][0]:,} ({growth:+.1f} MB; "
        f"target <= +{TARGET_GROWTH_MB:.0f} MB)",
    )


if __name__ == "__main__":
    main()
