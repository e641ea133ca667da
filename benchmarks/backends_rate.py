"""Delivery rate of the same notification on every task backend, one worker each, side by side
with a bare SMTP loop (no task machinery), into a counting ``sandbox.mailsink.MailSink``.

Cases (one fresh never-published article with N confirmed subscribers each):

- **immediate**: the in-process backend: the publish call itself fans out and sends all N.
  Clock: the publish call (the editor's request would wait this long).
- **dummy + run_enqueued**: enqueued on the dummy backend, then run in this process with
  ``wagtail_tasks.testing.run_enqueued``. Clock: publish to the last message.
- **database**: django-tasks-db, one ``db_worker --batch`` started after the publish.
  Clock: from starting the worker (Python and Django start-up included) to the last message.
- **rq**: django-tasks-rq, one ``rqworker --burst`` (forking a work horse per job), started
  after the publish. Clock as for database. Needs Redis on 127.0.0.1:6379 (database 5).
- **bare loop**: ``benchmarks/delivery_rate.py``'s loop: same messages, one connection.

    .venv/bin/python benchmarks/backends_rate.py [--subscribers 5000] [--batch-size 100]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402


def in_process(alias: str, section, expected: int, batch_size: int) -> float:
    from django.test import override_settings

    from benchmarks.delivery_rate import counting_sink
    from wagtail_tasks.testing import clear_enqueued, run_enqueued

    article = common.make_draft_article(section, f"On {alias}")
    routes = {g: {"backend": alias} for g in ("notifications", "sending")}
    with (
        counting_sink() as sink,
        override_settings(
            WAGTAIL_TASKS=routes,
            WAGTAIL_TASKS_SEND_BATCH_SIZE=batch_size,
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=sink.port,
        ),
    ):
        if alias == "dummy":
            clear_enqueued(alias)
        t0 = time.perf_counter()
        common.publish(article)
        if alias == "dummy":
            run_enqueued(alias)
        if not sink.wait_for(expected, timeout=600):
            raise RuntimeError(f"{alias}: only {sink.count} of {expected} arrived")
        elapsed = time.perf_counter() - t0
    check(article, alias)
    return elapsed


def out_of_process(alias: str, section, expected: int, batch_size: int) -> float:
    from django.test import override_settings

    from benchmarks.delivery_rate import counting_sink

    article = common.make_draft_article(section, f"On {alias}")
    queue = "wt-bench" if alias == "rq" else "default"
    routes = {g: {"backend": alias, "queue": queue} for g in ("notifications", "sending")}
    with counting_sink() as sink, override_settings(WAGTAIL_TASKS=routes):
        env = common.worker_env(
            smtp_port=sink.port, batch_size=batch_size, route=f"{alias}:{queue}"
        )
        common.publish(article)
        if alias == "rq":
            command = [sys.executable, "-m", "django", "rqworker", "--job-class"]
            command += ["django_tasks_rq.Job", "--burst", "--skip-checks", queue]
        else:
            command = common.worker_command("--batch")
        log = open(common.BENCH_DIR / f"backends_{alias}.log", "w")  # noqa: SIM115
        t0 = time.perf_counter()
        worker = subprocess.Popen(command, env=env, cwd=common.ROOT, stdout=log, stderr=log)
        arrived = common.wait_for_messages(sink, expected, worker)
        elapsed = time.perf_counter() - t0
        worker.wait(timeout=300)
        log.close()
        if not arrived or worker.returncode != 0:
            raise RuntimeError(f"{alias}: {sink.count} of {expected}, exit {worker.returncode}")
    check(article, alias)
    return elapsed


def check(article, alias: str) -> None:
    from wagtail_tasks.models import TaskStatus
    from wagtail_tasks.notifications.models import Notification

    record = Notification.objects.get(page_id=article.pk).record
    assert record.status == TaskStatus.SUCCEEDED, (alias, record.status, record.error)
    assert record.backend_alias == alias, (record.backend_alias, alias)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--skip-rq", action="store_true")
    args = parser.parse_args()
    common.setup("backends_rate")
    common.print_header(
        "Delivery rate per task backend (one worker each) vs a bare SMTP loop",
        f"{args.subscribers} subscribers, batches of {args.batch_size}, SQLite",
    )
    from benchmarks.delivery_rate import run_bare
    from tests.backends.rq import empty_queues, redis_reachable

    n = args.subscribers
    section = common.make_section("Backends")
    common.add_subscribers(section, n)
    cases = [
        (
            "immediate (in the publish call)",
            lambda: in_process("immediate", section, n, args.batch_size),
        ),
        (
            "dummy + run_enqueued (in process)",
            lambda: in_process("dummy", section, n, args.batch_size),
        ),
        (
            "database: 1 db_worker, cold start",
            lambda: out_of_process("default", section, n, args.batch_size),
        ),
    ]
    if args.skip_rq or not redis_reachable():
        print("rq: skipped (Redis unreachable on 127.0.0.1:6379 or --skip-rq)")
    else:
        empty_queues("wt-bench")
        cases.append(
            (
                "rq: 1 rqworker --burst, cold start",
                lambda: out_of_process("rq", section, n, args.batch_size),
            )
        )
    bare_page = common.make_draft_article(section, "Bare loop")
    cases.append(
        ("bare SMTP loop (renders, 1 connection)", lambda: run_bare(bare_page.pk, n, False))
    )
    results = []
    for name, run in cases:
        seconds = run()
        results.append((name, seconds))
        print(f"{name:42} {seconds:7.2f} s  {n / seconds:7.0f} msg/s", flush=True)
    bare = results[-1][1]
    print("-" * 78)
    for name, seconds in results[:-1]:
        print(f"{name:42} {bare / seconds:6.2f} x the bare loop's rate")


if __name__ == "__main__":
    main()
