"""Delivery rate of one real db_worker vs a bare SMTP loop, into the same kind of SMTP sink.

Every case sends the same N messages (the product's MessageBuilder: same templates, subject,
text and HTML bodies, unsubscribe links and recipients) into a counting
``sandbox.mailsink.MailSink`` that runs in this process. The sender always runs in a process
of its own. Cases, interleaved round by round so that a slow spell of the machine hits each:

- **worker**: ONE long-running ``db_worker`` on SQLite, started and warmed up (it has already
  delivered one small notification, as a worker that has been up for a while has). A
  never-published article in a section with N confirmed subscribers is published; the clock
  runs from the publish's commit to the sink having all N messages: the queue poll, fan-out,
  the send tasks, their database writes and tracking are all inside.
- **cold worker**: the same, but ``db_worker --batch`` is started after the publish and the
  clock starts when the process is started: Python and Django start-up are inside too.
- **bare loop**: no task machinery: a process reads the subscriptions, then on a signal
  renders each message with the same MessageBuilder and sends it over one connection with
  Django's SMTP backend.
- **bare loop, pre-built**: the messages are rendered before the clock starts; only sending
  is timed. The strictest comparison: the worker has to render, this loop does not.

The target (issue 2) is worker / bare loop >= 0.7; every ratio is printed.

    .venv/bin/python benchmarks/delivery_rate.py [--subscribers 3000] [--repeat 3]
        [--batch-sizes 100] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402

TARGET_RATIO = 0.7
DEFAULT_BATCH = 100


def counting_sink():
    from sandbox.mailsink import MailSink

    return MailSink(keep_messages=False)


# --- Bare loops (run in a child process) -----------------------------------------------------


def bare_child(page_id: int, port: int, prebuilt: bool) -> None:
    """Load the subscriptions (and, if ``prebuilt``, render every message), say READY, wait
    for GO, then send them all over one connection."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    import django

    django.setup()
    from django.core.mail import get_connection
    from wagtail.models import Page

    from wagtail_tasks.notifications.emails import notification_builder
    from wagtail_tasks.notifications.models import Subscription

    page = Page.objects.get(pk=page_id).specific
    builder = notification_builder(page)
    subscriptions = list(Subscription.objects.confirmed().for_page(page).order_by("pk"))
    messages = [builder.build(s) for s in subscriptions] if prebuilt else None
    print(f"READY {len(subscriptions)}", flush=True)
    sys.stdin.readline()
    connection = get_connection(
        "django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=port
    )
    with connection:
        if messages is not None:
            for message in messages:
                connection.send_messages([message])
        else:
            for subscription in subscriptions:
                connection.send_messages([builder.build(subscription)])


def run_bare(page_id: int, expected: int, prebuilt: bool) -> float:
    """Seconds from GO to the sink having every message."""
    with counting_sink() as sink:
        mode = "prebuilt" if prebuilt else "render"
        child = subprocess.Popen(
            [sys.executable, __file__, "--bare-child", mode, str(page_id), str(sink.port)],
            env=common.worker_env(),
            cwd=common.ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = child.stdout.readline().split()
        if ready != ["READY", str(expected)]:
            child.kill()
            raise RuntimeError(f"bare sender did not get ready: {ready}")
        t0 = time.perf_counter()
        child.stdin.write("GO\n")
        child.stdin.flush()
        if not common.wait_for_messages(sink, expected, child):
            raise RuntimeError(f"bare loop: only {sink.count} of {expected} messages arrived")
        elapsed = time.perf_counter() - t0
        child.communicate(timeout=60)
        assert child.returncode == 0 and sink.count == expected, (child.returncode, sink.count)
    return elapsed


# --- Worker cases ----------------------------------------------------------------------------

_articles = 0


def new_article(section):
    global _articles
    _articles += 1
    return common.make_draft_article(section, f"Delivery run {_articles:03d}")


def run_worker(section, warmup_section, expected: int, batch_size: int, cold: bool) -> dict:
    from wagtail_tasks.models import TaskRecord, TaskStatus
    from wagtail_tasks.notifications.models import Delivery, DeliveryStatus, Notification

    article = new_article(section)
    with counting_sink() as sink:
        env = common.worker_env(smtp_port=sink.port, batch_size=batch_size)
        if cold:
            common.publish(article)
            t0 = time.perf_counter()
            worker = common.start_worker(env, "delivery_worker")
            arrived = common.wait_for_messages(sink, expected, worker)
            elapsed = time.perf_counter() - t0
            common.finish_worker(worker)
        else:
            worker = common.start_worker(env, "delivery_worker", batch=False)
            common.publish(new_article(warmup_section))
            if not common.wait_for_messages(sink, 1, worker, timeout=60):
                raise RuntimeError("the worker did not deliver the warm-up notification")
            time.sleep(0.5)  # let it finish the warm-up's bookkeeping and go idle
            t0 = time.perf_counter()
            common.publish(article)
            arrived = common.wait_for_messages(sink, expected + 1, worker)
            elapsed = time.perf_counter() - t0
            common.stop_worker(worker)
        if not arrived:
            raise RuntimeError(f"worker: only {sink.count} messages arrived")
    assert not common.check_worker_log("delivery_worker")

    notification = Notification.objects.get(page_id=article.pk)
    record = notification.record
    assert record.status == TaskStatus.SUCCEEDED, (record.status, record.error)
    sent = Delivery.objects.filter(notification=notification, status=DeliveryStatus.SENT)
    assert sent.count() == expected, (sent.count(), expected)
    batches = list(
        TaskRecord.objects.filter(parent=record).values_list("started_at", "finished_at")
    )
    in_tasks = sum((done - start).total_seconds() for start, done in batches)
    return {
        "seconds": elapsed,
        "fanout": (notification.fanned_out_at - record.started_at).total_seconds(),
        "batches": len(batches),
        "ms_per_message_in_tasks": in_tasks / expected * 1000,
    }


# --- Where the time goes (--profile) ---------------------------------------------------------

# ``python -m django <command>`` with timers around the parts of sending, in the real worker.
# At exit the totals (seconds, calls) go to the JSON file named by WAGTAIL_TASKS_BENCH_TIMINGS.
INSTRUMENT_CODE = """
import atexit, functools, json, os, smtplib, sys, time
import django
django.setup()
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import EmailMessage
from django.db.backends.utils import CursorWrapper
from django.template.backends.django import Template
from wagtail_tasks.notifications import emails, tasks, tokens
totals = {}
inside = [0]
def timed(owner, name, label, only_inside=False, scope=False):
    original = getattr(owner, name)
    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        if only_inside and not inside[0]:
            return original(*args, **kwargs)
        inside[0] += scope
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            entry = totals.setdefault(label, [0.0, 0])
            entry[0] += time.perf_counter() - t
            entry[1] += 1
            inside[0] -= scope
    setattr(owner, name, wrapper)
timed(tasks, "send_deliveries", "send_deliveries", scope=True)
timed(emails.MessageBuilder, "build", "build")
timed(tokens, "make_token", "make_token")
timed(Template, "render", "render")
timed(EmailBackend, "send_messages", "send_messages")
timed(smtplib.SMTP, "sendmail", "sendmail")
for method in ("execute", "executemany"):
    timed(CursorWrapper, method, "sql", only_inside=True)
atexit.register(lambda: json.dump(totals, open(os.environ["WAGTAIL_TASKS_BENCH_TIMINGS"], "w")))
from django.core.management import execute_from_command_line
execute_from_command_line(["django", *sys.argv[1:]])
"""


def profile_worker(section, expected: int) -> None:
    """Run a cold worker once more with timers around the parts; print ms per message."""
    timings_file = common.BENCH_DIR / "delivery_rate_timings.json"
    timings_file.unlink(missing_ok=True)
    common.publish(new_article(section))
    with counting_sink() as sink:
        env = common.worker_env(smtp_port=sink.port, batch_size=DEFAULT_BATCH)
        env["WAGTAIL_TASKS_BENCH_TIMINGS"] = str(timings_file)
        launcher = (sys.executable, "-c", INSTRUMENT_CODE)
        worker = common.start_worker(env, "delivery_worker_timed", launcher=launcher)
        assert common.wait_for_messages(sink, expected, worker)
        common.finish_worker(worker)
    totals = json.loads(timings_file.read_text())

    def ms(key: str) -> float:
        return totals.get(key, [0.0])[0] * 1000 / expected

    in_task = ms("send_deliveries")
    rows = [
        ("SMTP round trips (smtplib sendmail)", ms("sendmail")),
        ("MIME build (send_messages minus sendmail)", ms("send_messages") - ms("sendmail")),
        ("3 template renders", ms("render")),
        ("signed unsubscribe token", ms("make_token")),
        (
            "rest of build() (reverse, context, message)",
            ms("build") - ms("render") - ms("make_token"),
        ),
        ("SQL: claims, outcomes, progress", ms("sql")),
    ]
    rows.append(("rest: the loop, checks, transactions", in_task - sum(v for _, v in rows)))
    statements = totals.get("sql", [0, 0])[1] / expected
    print(f"\nWhere a send task's time goes (one more cold run, batch {DEFAULT_BATCH}, timers):")
    for label, value in rows:
        print(f"  {label:<48}{value:7.3f} ms/message {value / in_task * 100:5.0f}%")
    print(f"  {'= inside send_deliveries':<48}{in_task:7.3f} ms/message")
    print(f"  SQL statements per message: {statements:.2f}")


# --- Main --------------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--bare-child":
        bare_child(int(sys.argv[3]), int(sys.argv[4]), prebuilt=sys.argv[2] == "prebuilt")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every case")
    parser.add_argument(
        "--batch-sizes", default=str(DEFAULT_BATCH), help="running worker, e.g. 50,100,500"
    )
    parser.add_argument("--profile", action="store_true", help="show where send time goes")
    args = parser.parse_args()
    n = args.subscribers
    sizes = [int(x) for x in args.batch_sizes.split(",") if x]
    sizes = sizes if DEFAULT_BATCH in sizes else [DEFAULT_BATCH, *sizes]

    common.setup("delivery_rate")
    common.print_header(
        "Benchmark: delivery rate, one db_worker vs a bare SMTP loop",
        f"{n:,} confirmed subscribers; SQLite + django_tasks_db; counting aiosmtpd MailSink "
        "on loopback.",
    )
    from django_tasks_db.models import DBTaskResult

    section = common.make_section("News")
    common.add_subscribers(section, n)
    warmup_section = common.make_section("Warm-up")
    common.add_subscribers(warmup_section, 1, prefix="warmup")
    # The page the bare loops render: published; its queued fan-out removed (nobody runs it).
    bare_page = new_article(section)
    common.publish(bare_page)
    DBTaskResult.objects.all().delete()

    cases = [
        ("bare", None),
        ("worker", DEFAULT_BATCH),
        ("prebuilt", None),
        ("cold", DEFAULT_BATCH),
        *(("worker", size) for size in sizes if size != DEFAULT_BATCH),
    ]
    seconds: dict[tuple[str, int | None], list[float]] = {case: [] for case in cases}
    details: dict[int, list[dict]] = {size: [] for size in sizes}
    print(f"\nRuns ({args.repeat} rounds, the order rotating each round):")
    for rnd in range(args.repeat):
        shift = rnd % len(cases)
        for case in cases[shift:] + cases[:shift]:
            kind, size = case
            if kind in ("bare", "prebuilt"):
                elapsed = run_bare(bare_page.pk, n, prebuilt=kind == "prebuilt")
                extra = ""
            else:
                r = run_worker(section, warmup_section, n, size, cold=kind == "cold")
                elapsed = r["seconds"]
                if kind == "worker":
                    details[size].append(r)
                extra = (
                    f"  (batch {size}: fan-out {r['fanout']:.2f} s, {r['batches']} send tasks, "
                    f"{r['ms_per_message_in_tasks']:.2f} ms/message inside them)"
                )
            seconds[case].append(elapsed)
            print(
                f"  {label(case):<34}{elapsed:6.2f} s {n / elapsed:6.0f} msgs/s{extra}", flush=True
            )

    rate = {case: n / common.median(values) for case, values in seconds.items()}
    bare = rate[("bare", None)]
    print("\nResults (median of each case; ratio = its rate / the bare loop's rate):")
    for case in cases:
        runs = common.fmt_list([n / s for s in seconds[case]], "{:.0f}")
        print(
            f"  {label(case):<34}{rate[case]:6.0f} msgs/s  ratio {rate[case] / bare:5.2f}  "
            f"runs {runs}"
        )
    worker = rate[("worker", DEFAULT_BATCH)]
    prebuilt = worker / rate[("prebuilt", None)]
    cold = rate[("cold", DEFAULT_BATCH)] / bare
    if args.profile:
        profile_worker(section, n)
    ratio = worker / bare
    common.verdict(
        ratio >= TARGET_RATIO,
        f"one running db_worker delivers {worker:.0f} msgs/s vs {bare:.0f} msgs/s for a bare "
        f"loop that renders and sends the same messages: ratio {ratio:.2f} (target >= "
        f"{TARGET_RATIO}); against pre-built messages {prebuilt:.2f}; a cold worker, start-up "
        f"included, {cold:.2f}",
    )


def label(case: tuple[str, int | None]) -> str:
    kind, size = case
    return {
        "bare": "bare loop (render + send)",
        "prebuilt": "bare loop, pre-built messages",
        "cold": "cold worker (start-up included)",
        "worker": f"running worker, batch {size}",
    }[kind]


if __name__ == "__main__":
    main()
