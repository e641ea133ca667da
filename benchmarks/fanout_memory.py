"""Peak memory (RSS) of a db_worker while it fans a publication out to N subscribers.

For each N, a never-published ArticlePage in a section with N confirmed subscribers is
published (the fan-out waits in the database queue), then a fresh ``db_worker --batch`` process
runs it and exits. The "sending" group is routed to the TASKS alias "parked" (a database
backend no worker serves), so the send tasks are only enqueued: the fan-out alone is measured.

Peak RSS is the worker's own ``VmHWM`` (from /proc/self/status, written by an atexit hook
of the launcher, so it is exact), cross-checked by polling ``VmHWM`` in /proc/<pid>/status
every 10 ms. The baseline is an idle worker that drained an
empty queue (everything imported, no task run).

    .venv/bin/python benchmarks/fanout_memory.py [--sizes 0,1000,10000,30000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402

# Peak RSS with the largest N may exceed the peak with the smallest (>0) N by at most this.
TARGET_GROWTH_MB = 10.0


def read_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB (empty once it has exited)."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return values


# ``python -m django <command>``, plus: at exit, write this process's own VmHWM (kB) to a file.
# Needed because ru_maxrss from wait4()/RUSAGE_CHILDREN is useless here: Linux carries the
# RSS high-water mark of the forked copy of *this* (big) process across exec into the child.
LAUNCHER_CODE = """
import atexit, os, sys
def report_peak():
    with open("/proc/self/status") as status:
        hwm = next(line for line in status if line.startswith("VmHWM:"))
    with open(os.environ["WAGTAIL_TASKS_BENCH_HWM_FILE"], "w") as out:
        out.write(hwm.split()[1])
atexit.register(report_peak)
from django.core.management import execute_from_command_line
execute_from_command_line(["django", *sys.argv[1:]])
"""


def run_measured_worker(env: dict[str, str], log_name: str) -> dict:
    """Run one db_worker --batch to its end; its peak RSS in MB, and its time."""
    hwm_file = common.BENCH_DIR / f"{log_name}.hwm"
    hwm_file.unlink(missing_ok=True)
    env = {**env, "WAGTAIL_TASKS_BENCH_HWM_FILE": str(hwm_file)}
    launcher = (sys.executable, "-c", LAUNCHER_CODE)
    process = common.start_worker(env, log_name, launcher=launcher)
    polled_hwm = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal polled_hwm
        while not stop.is_set():
            polled_hwm = max(polled_hwm, read_status(process.pid).get("VmHWM", 0))
            time.sleep(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    t0 = time.perf_counter()
    poller.start()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - t0
    stop.set()
    poller.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    common.finish_worker(process)
    failures = common.check_worker_log(log_name)
    assert not failures, failures
    return {
        # The hook runs just before interpreter teardown; the poller can see teardown too.
        "peak": max(int(hwm_file.read_text()), polled_hwm) / 1024,
        "at_exit": int(hwm_file.read_text()) / 1024,
        "polled": polled_hwm / 1024,
        "ru_maxrss": usage.ru_maxrss / 1024,
        "seconds": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,1000,10000,30000")
    parser.add_argument("--repeat", type=int, default=1, help="measurements per size")
    parser.add_argument("--batch-size", type=int, default=100, help="send batch size")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]

    common.setup("fanout_memory", WAGTAIL_TASKS_BENCH_SENDING="parked")
    common.print_header(
        "Benchmark: worker peak memory during a fan-out",
        f"One fresh db_worker --batch per measurement; subscribers {', '.join(map(str, sizes))}; "
        f"send tasks parked (not run); send batch size {args.batch_size}.",
    )
    from django.conf import settings
    from django_tasks_db.models import DBTaskResult

    from wagtail_tasks.models import TaskRecord, TaskStatus
    from wagtail_tasks.notifications.models import Delivery, Notification

    assert settings.WAGTAIL_TASKS["sending"]["backend"] == "parked"
    env = common.worker_env(sending="parked", batch_size=args.batch_size)

    sections = {}
    started = time.perf_counter()
    for size in sizes:
        sections[size] = common.make_section(f"Section {size}")
        common.add_subscribers(sections[size], size)
    print(f"({sum(sizes):,} subscribers created in {time.perf_counter() - started:.1f} s)")
    # Wagtail's own tasks for the new sections (reference index ...) are not what we measure.
    DBTaskResult.objects.all().delete()

    rows = []
    baseline = [run_measured_worker(env, "fanout_idle")]
    print(f"  idle worker, empty queue: peak {baseline[0]['peak']:.1f} MB", flush=True)
    counter = 0
    for _ in range(args.repeat):
        for size in sizes:
            counter += 1
            article = common.make_draft_article(sections[size], f"Fan-out {counter}")
            common.publish(article)
            notification = Notification.objects.get(page_id=article.pk)
            result = run_measured_worker(env, "fanout_worker")
            record = TaskRecord.objects.get(pk=notification.record_id)
            notification.refresh_from_db()
            assert notification.fanned_out_at is not None, (record.status, record.error)
            deliveries = Delivery.objects.filter(notification=notification).count()
            assert deliveries == size, (deliveries, size)
            parked = TaskRecord.objects.filter(parent=record)
            assert not parked.exclude(status=TaskStatus.QUEUED).exists(), "a send task ran"
            result.update(
                size=size,
                deliveries=deliveries,
                send_tasks=parked.count(),
                fanout=(notification.fanned_out_at - record.started_at).total_seconds(),
            )
            rows.append(result)
            print(
                f"  {size:>6,} subscribers: peak {result['peak']:.1f} MB, "
                f"fan-out {result['fanout']:.2f} s",
                flush=True,
            )
    baseline.append(run_measured_worker(env, "fanout_idle"))
    print(f"  idle worker, empty queue: peak {baseline[1]['peak']:.1f} MB", flush=True)

    base = common.median([b["peak"] for b in baseline])
    print()
    header = (
        f"{'case':<22}{'deliveries':>11}{'send tasks':>11}{'fan-out s':>10}"
        f"{'peak RSS MB':>13}{'VmHWM polled':>13}{'vs idle MB':>12}"
    )
    print(header)
    print("-" * len(header))
    for b in baseline:
        print(
            f"{'idle worker (no task)':<22}{'-':>11}{'-':>11}{'-':>10}"
            f"{b['peak']:>13.1f}{b['polled']:>13.1f}{b['peak'] - base:>+12.1f}"
        )
    for r in rows:
        label = f"fan-out to {r['size']:,}"
        print(
            f"{label:<22}{r['deliveries']:>11,}{r['send_tasks']:>11,}"
            f"{r['fanout']:>10.2f}{r['peak']:>13.1f}{r['polled']:>13.1f}"
            f"{r['peak'] - base:>+12.1f}"
        )
    print()
    print("peak RSS = max of the worker's own VmHWM read by an atexit hook and VmHWM polled")
    print("every 10 ms from /proc/<pid>/status (the poll can miss the last ms before exit).")
    rus = sorted({round(r["ru_maxrss"], 1) for r in [*baseline, *rows]})
    print(
        f"(ru_maxrss from wait4 reads {', '.join(map(str, rus))} MB: that is the RSS of this "
        "benchmark process copied at fork, kept across exec, not the worker's own peak)"
    )

    measured = [r for r in rows if r["size"] > 0]
    if len(measured) >= 2:
        small = min(r["size"] for r in measured)
        large = max(r["size"] for r in measured)
        peak_small = max(r["peak"] for r in measured if r["size"] == small)
        peak_large = max(r["peak"] for r in measured if r["size"] == large)
        growth = peak_large - peak_small
        per_1k = growth / ((large - small) / 1000)
        print(
            f"growth from {small:,} to {large:,} subscribers: {growth:+.1f} MB "
            f"({per_1k:+.2f} MB per 1,000 subscribers)"
        )
        common.verdict(
            growth <= TARGET_GROWTH_MB,
            f"worker peak RSS {peak_small:.1f} MB at {small:,} subscribers, {peak_large:.1f} MB "
            f"at {large:,} ({growth:+.1f} MB; target <= +{TARGET_GROWTH_MB:.0f} MB); "
            f"idle worker {base:.1f} MB",
        )


if __name__ == "__main__":
    main()
