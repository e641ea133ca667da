"""Wagtail's synchronous XLSX export of Aging pages vs our background generation, same rows.

The site of ``report_inventory.py`` (N published pages, each with a ``wagtail.publish`` log
entry by the admin, so Wagtail's "Last published by" subquery finds a user). Requests go
through Django's test ``Client`` in this process, logged in as a superuser: the whole
request/response cycle (middleware, view, the file's bytes read out of the response) is
timed, without a network server in between, which would add the same small cost to both.

- Wagtail: ``GET /admin/reports/aging-pages/?export=xlsx``; the view reads every row, builds
  the whole XLSX in a ``BytesIO`` and answers with it.
- Ours: ``POST /admin/reports/background/aging-pages/`` with ``format=xlsx``: it records the
  file and enqueues its generation, and answers with a redirect at once.

The two are interleaved (``--repeat`` rounds, order alternating). Memory of the serving
process, the same two ways for both: the request's RSS high-water mark above the RSS before
it (``/proc/self/clear_refs`` reset the ``VmHWM`` first) in every timed round, and the
``tracemalloc`` peak in one extra round each (tracemalloc slows Python down, so those rounds
are not timed). Then one fresh ``db_worker --batch`` generates our file for the last POST:
its time (tracking row), its peak RSS (as ``fanout_memory.py``) and progress writes (as
``report_inventory.py``). Both files are read back and must hold the same rows.

    .venv/bin/python benchmarks/report_export.py [--pages 50000] [--repeat 3]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_reports] [--quick]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402
from benchmarks.report_inventory import (  # noqa: E402
    Site,
    check_database_url,
    make_admin,
    run_counting_worker,
)

WAGTAIL_URL = "/admin/reports/aging-pages/"
OURS_URL = "/admin/reports/background/aging-pages/"
TARGET_OURS_MS = 1000.0


def vm_status() -> dict[str, int]:
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def reset_hwm() -> bool:
    """Reset this process's RSS high-water mark (Linux: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def wagtail_export(client) -> tuple[object, bytes]:
    response = client.get(WAGTAIL_URL, {"export": "xlsx"})
    assert response.status_code == 200, response.status_code
    content = b"".join(response.streaming_content)
    response.close()
    return response, content


def background_request(client) -> tuple[object, bytes]:
    response = client.post(OURS_URL, {"format": "xlsx"})
    assert response.status_code == 302, (response.status_code, response.content[:2000])
    return response, b""


CASES = {"wagtail": wagtail_export, "ours": background_request}


def measure(case: str, client, traced: bool = False) -> dict:
    """One request: its time, and its memory (RSS high-water above the RSS before it; or the
    tracemalloc peak when ``traced``)."""
    import gc

    gc.collect()
    result: dict = {}
    if traced:
        tracemalloc.start()
        tracemalloc.reset_peak()
        _, content = CASES[case](client)
        result["traced_peak"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    else:
        hwm_ok = reset_hwm()
        before = vm_status()["VmRSS"]
        started = time.perf_counter()
        _, content = CASES[case](client)
        result["ms"] = (time.perf_counter() - started) * 1000
        after = vm_status()
        result["rss_delta"] = (after["VmHWM"] - before) / 1024 if hwm_ok else float("nan")
    result["content"] = content
    return result


def sheet_rows(data: bytes) -> list[tuple]:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True)
    rows = [tuple(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
    workbook.close()
    return rows


def add_publish_log_entries(admin) -> int:
    """One ``wagtail.publish`` log entry by ``admin`` per published page (bulk)."""
    from django.contrib.contenttypes.models import ContentType
    from wagtail.models import Page, PageLogEntry

    content_type = ContentType.objects.get_for_model(Page)
    pages = Page.objects.exclude(last_published_at__isnull=True).values_list(
        "pk", "title", "last_published_at"
    )
    entries = [
        PageLogEntry(
            page_id=pk,
            content_type=content_type,
            label=title,
            action="wagtail.publish",
            timestamp=when,
            user=admin,
        )
        for pk, title, when in pages
    ]
    PageLogEntry.objects.bulk_create(entries, batch_size=2000)
    return len(entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=50000)
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds per case")
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 pages, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.pages, args.repeat = 2000, 1
    check_database_url(args.database_url)

    common.setup(
        "report_export",
        database_url=args.database_url,
        WAGTAIL_TASKS_TEST_REPORT_DIR=str(common.BENCH_DIR / "reports"),
    )
    common.print_header(
        "Benchmark: Wagtail's synchronous XLSX export vs background generation (Aging pages)",
        f"{args.pages:,} published pages; {args.repeat} timed round(s) per case, interleaved; "
        "test Client in this process, superuser; one fresh db_worker --batch for our file.",
    )
    from django.test import Client
    from django_tasks_db.models import DBTaskResult

    from benchmarks.fanout_memory import run_measured_worker
    from wagtail_tasks.models import TaskRecord, TaskStatus
    from wagtail_tasks.reports.files import report_storage
    from wagtail_tasks.reports.models import ReportFile
    from wagtail_tasks.reports.tasks import KIND_REPORT

    env = common.worker_env()
    admin = make_admin()
    started = time.perf_counter()
    site = Site(admin)
    site.grow_to(args.pages)
    entries = add_publish_log_entries(admin)
    common.analyze()
    print(
        f"({args.pages:,} published pages and {entries:,} publish log entries in "
        f"{time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    common.finish_worker(common.start_worker(env, "report_export_setup"), timeout=600)
    DBTaskResult.objects.all().delete()

    client = Client()
    client.force_login(admin)
    # Warm-up (imports, URL resolving, templates): a small page of each, not measured.
    assert client.get(WAGTAIL_URL).status_code == 200
    assert client.get(OURS_URL).status_code == 200

    timed: dict[str, list[dict]] = {case: [] for case in CASES}
    wagtail_file = b""
    for round_no in range(args.repeat):
        order = list(CASES) if round_no % 2 == 0 else list(reversed(CASES))
        for case in order:
            result = measure(case, client)
            if case == "wagtail":
                wagtail_file = result["content"]
            result["content"] = b""
            timed[case].append(result)
            print(
                f"  round {round_no + 1} {case:<8}: {result['ms']:9.1f} ms, RSS high-water "
                f"+{result['rss_delta']:.1f} MB",
                flush=True,
            )
    traced = {}
    for case in CASES:
        traced[case] = measure(case, client, traced=True)["traced_peak"]
        print(f"  traced   {case:<8}: tracemalloc peak {traced[case]:.1f} MB", flush=True)

    # Our file: only the last POST's generation runs (the earlier requests' rows go).
    TaskRecord.objects.filter(kind=KIND_REPORT).delete()
    DBTaskResult.objects.all().delete()
    baseline = run_measured_worker(env, "report_export_idle")
    background_request(client)
    report_file = ReportFile.objects.get()
    worker = run_counting_worker(env, "report_export_worker")
    report_file = ReportFile.objects.select_related("record").get(pk=report_file.pk)
    record = report_file.record
    assert record.status == TaskStatus.SUCCEEDED, (record.status, record.error)
    generation_s = (record.finished_at - record.started_at).total_seconds()
    with report_storage().open(report_file.stored_name, "rb") as stored:
        our_file = stored.read()
    wagtail_rows, our_rows = sheet_rows(wagtail_file), sheet_rows(our_file)
    # All pages share one last_published_at: rows that tie may come in another order
    # (PostgreSQL); the same rows, sorted, must be equal.
    same = wagtail_rows[0] == our_rows[0] and sorted(map(repr, wagtail_rows)) == sorted(
        map(repr, our_rows)
    )
    print(f"  same order too: {wagtail_rows == our_rows}")
    print(
        f"  worker: {report_file.rows:,} rows in {generation_s:.1f} s, peak "
        f"{worker['peak']:.1f} MB (idle {baseline['peak']:.1f} MB), "
        f"{worker['updates']['progress']} progress writes; files hold the same rows: {same} "
        f"({len(wagtail_rows) - 1:,} and {len(our_rows) - 1:,} data rows)",
        flush=True,
    )

    med = {case: common.median([r["ms"] for r in timed[case]]) for case in CASES}
    rss = {case: common.median([r["rss_delta"] for r in timed[case]]) for case in CASES}
    print()
    header = (
        f"{'case':<42}{'request ms':>11}{'RSS HWM +MB':>12}{'tracemalloc MB':>15}"
        f"{'worker s':>9}{'worker peak MB':>15}"
    )
    print(header)
    print("-" * len(header))
    print(
        f"{'Wagtail GET ?export=xlsx (in the request)':<42}{med['wagtail']:>11.1f}"
        f"{rss['wagtail']:>12.1f}{traced['wagtail']:>15.1f}{'-':>9}{'-':>15}"
    )
    print(
        f"{'ours POST format=xlsx (records, enqueues)':<42}{med['ours']:>11.1f}"
        f"{rss['ours']:>12.1f}{traced['ours']:>15.1f}{generation_s:>9.1f}"
        f"{worker['peak']:>15.1f}"
    )
    idle = "idle worker (no task)"
    print(f"{idle:<42}{'-':>11}{'-':>12}{'-':>15}{'-':>9}{baseline['peak']:>15.1f}")
    print()
    print(
        f"request ms: median of {args.repeat} "
        f"(Wagtail {common.fmt_list([r['ms'] for r in timed['wagtail']])}, "
        f"ours {common.fmt_list([r['ms'] for r in timed['ours']])}); ratio Wagtail/ours "
        f"{med['wagtail'] / med['ours']:.0f}x."
    )
    print("RSS HWM +MB: the serving process's VmHWM during the request minus VmRSS before it")
    print("(VmHWM reset via /proc/self/clear_refs), median; it understates after the first")
    print("request, whose freed memory stays mapped for the next; per round above.")
    print("tracemalloc MB: Python allocations'")
    print("peak in one untimed request each. worker s: finished_at - started_at of our row.")
    common.verdict(
        same and med["ours"] <= TARGET_OURS_MS,
        f"same {len(our_rows) - 1:,} rows in both files; ours answers in {med['ours']:.0f} ms "
        f"vs Wagtail's {med['wagtail']:.0f} ms in the request (tracemalloc "
        f"{traced['ours']:.1f} vs {traced['wagtail']:.1f} MB); worker generates it in "
        f"{generation_s:.1f} s with peak {worker['peak']:.1f} MB",
    )


if __name__ == "__main__":
    main()
