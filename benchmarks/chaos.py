"""Chaos: one notification to 5,000 subscribers while workers are killed and the mail server stops.

Each run publishes an article to N confirmed subscribers, runs two real ``db_worker`` processes,
and meanwhile, at random moments: SIGKILLs a worker (and starts a replacement) several times,
and stops the SMTP server for a few seconds. ``wagtail_tasks_recover`` runs every half second,
as cron would (with a short ``WAGTAIL_TASKS_STUCK_AFTER``). When all tracking rows have
finished, it counts what reached the server: distinct recipients, duplicates, and subscribers
without a message, which must all be deliveries that a killed worker held (FAILED "not known
whether this email was sent"), never silently lost.

    .venv/bin/python benchmarks/chaos.py --runs 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402

STUCK_AFTER = 2.0
PROGRESS_INTERVAL = 0.25
RETRY_DELAY = 0.5  # then 1, 2, 4 ... seconds


def chaos_run(number: int, args, rng: random.Random) -> dict:
    from sandbox.mailsink import MailSink
    from wagtail_tasks.models import TaskRecord, TaskStatus
    from wagtail_tasks.notifications.models import (
        UNFINISHED_DELIVERY,
        Delivery,
        DeliveryStatus,
        Notification,
    )
    from wagtail_tasks.notifications.tasks import UNKNOWN_OUTCOME
    from wagtail_tasks.tracking import recover_stuck

    section = common.make_section(f"Chaos {number}")
    article = common.make_draft_article(section, f"Chaos article {number}")
    prefix = f"run{number}-reader"
    common.add_subscribers(section, args.subscribers, prefix=prefix)
    everybody = {f"{prefix}{n}@example.com" for n in range(args.subscribers)}

    sink = MailSink(keep_messages=False).start()
    env = common.worker_env(
        smtp_port=sink.port,
        stuck_after=STUCK_AFTER,
        progress_interval=PROGRESS_INTERVAL,
        retry_delay=RETRY_DELAY,
        batch_size=args.batch_size,
    )
    workers = [
        common.start_worker(env, f"chaos-{number}-w{i}", batch=False) for i in range(args.workers)
    ]
    started = time.monotonic()
    common.publish(article)
    notification = Notification.objects.get(page=article)

    # Random moments for the kills and the outage, within the time a calm run takes.
    calm = max(2.0, args.subscribers / 400)
    events = sorted(
        [(rng.uniform(0.2, calm), "kill") for _ in range(args.kills)]
        + [(rng.uniform(0.2, calm), "outage")]
    )
    kills: list[float] = []
    recovered: dict[int, float] = {}
    outage_until = None
    spare = args.workers
    deadline = started + args.timeout

    def unfinished() -> bool:
        tree = TaskRecord.objects.filter(pk=notification.record_id) | TaskRecord.objects.filter(
            parent_id=notification.record_id
        )
        return (
            tree.unfinished().exists()
            or Delivery.objects.filter(
                notification=notification, status__in=UNFINISHED_DELIVERY
            ).exists()
        )

    last_recover = 0.0
    while time.monotonic() < deadline:
        now = time.monotonic() - started
        while events and events[0][0] <= now:
            _, what = events.pop(0)
            if what == "kill":
                victim = rng.choice(workers)
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait()
                victim.log_file.close()
                kills.append(time.monotonic())
                workers.remove(victim)
                workers.append(common.start_worker(env, f"chaos-{number}-w{spare}", batch=False))
                spare += 1
            else:
                sink.stop()
                outage_until = time.monotonic() + args.outage
        if outage_until and time.monotonic() >= outage_until:
            sink.start()
            outage_until = None
        if time.monotonic() - last_recover >= 0.5:
            last_recover = time.monotonic()
            recovery = recover_stuck()
            for pk in recovery.requeued + recovery.resent:
                recovered.setdefault(pk, time.monotonic())
        if not events and outage_until is None and not unfinished():
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    finished = not unfinished()
    for worker in workers:
        common.stop_worker(worker)
    time.sleep(0.2)
    sink.stop()

    counts = Counter(address.lower() for address in sink.recipients)
    received = set(counts) & everybody
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    missing = everybody - received
    unknown = set(
        Delivery.objects.filter(
            notification=notification, status=DeliveryStatus.FAILED, reason=UNKNOWN_OUTCOME
        ).values_list("subscription__email", flat=True)
    )
    # Time from a worker's death to its work being found and enqueued again.
    resumed = []
    for when in recovered.values():
        death = max((k for k in kills if k <= when), default=None)
        if death is not None:
            resumed.append(when - death)
    rows = TaskRecord.objects.filter(pk=notification.record_id) | TaskRecord.objects.filter(
        parent_id=notification.record_id
    )
    return {
        "run": number,
        "subscribers": args.subscribers,
        "distinct_recipients": len(received),
        "duplicates": duplicates,
        "missing": len(missing),
        "missing_marked_unknown": len(missing & unknown),
        "missing_silently": len(missing - unknown),
        "unknown_that_arrived": len(unknown & received),
        "kills": len(kills),
        "recovered_rows": len(recovered),
        "resume_seconds": sorted(round(r, 2) for r in resumed),
        "all_rows_finished": finished
        and not rows.exclude(status__in=[TaskStatus.SUCCEEDED, TaskStatus.FAILED]).exists(),
        "notification_status": TaskRecord.objects.get(pk=notification.record_id).status,
        "seconds": round(elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--kills", type=int, default=4, help="workers killed per run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--outage", type=float, default=3.0, help="seconds the SMTP server is down")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON line per run only")
    parser.add_argument("--db-name", default="chaos", help="database file var/bench/<name>.sqlite3")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    rng = random.Random(seed)

    common.setup(
        args.db_name,
        WAGTAIL_TASKS_BENCH_STUCK_AFTER=str(STUCK_AFTER),
        WAGTAIL_TASKS_BENCH_PROGRESS_INTERVAL=str(PROGRESS_INTERVAL),
    )
    if not args.json:
        common.print_header(
            "Chaos: kills, a mail server outage, and the count",
            f"{args.subscribers:,} subscribers, {args.workers} db_workers, {args.kills} SIGKILLs "
            f"and one {args.outage:.0f} s SMTP outage per run, at random moments; seed {seed}.",
        )
    results = []
    for number in range(1, args.runs + 1):
        result = chaos_run(number, args, rng)
        results.append(result)
        if args.json:
            print(json.dumps(result), flush=True)
            continue
        print(
            f"run {number:2}: {result['distinct_recipients']:,} distinct recipients, "
            f"{result['duplicates']} duplicates, {result['missing']} without a message "
            f"({result['missing_marked_unknown']} marked unknown, {result['missing_silently']} "
            f"silently), {result['unknown_that_arrived']} marked unknown that did arrive; "
            f"{result['kills']} kills, {result['recovered_rows']} rows resumed "
            f"(death to recovery, s: {result['resume_seconds']}); rows all finished: "
            f"{result['all_rows_finished']}; {result['seconds']} s",
            flush=True,
        )
    if args.json:
        return
    duplicates = sum(r["duplicates"] for r in results)
    silently = sum(r["missing_silently"] for r in results)
    unknown = sum(r["missing_marked_unknown"] for r in results)
    delivered = sum(r["distinct_recipients"] for r in results)
    resumes = [s for r in results for s in r["resume_seconds"]]
    print()
    print(
        f"{len(results)} runs: {delivered:,} of {args.subscribers * len(results):,} subscribers "
        f"got their email; {duplicates} duplicates; {unknown} held by killed workers and marked "
        f"unknown (not resent); {silently} lost silently"
    )
    if resumes:
        print(
            f"death to recovery (its work found and enqueued again): median "
            f"{statistics.median(resumes):.2f} s, max {max(resumes):.2f} s over {len(resumes)} "
            f"recoveries (stuck after {STUCK_AFTER:.0f} s, recovery every 0.5 s)"
        )
    ok = duplicates == 0 and silently == 0 and all(r["all_rows_finished"] for r in results)
    common.verdict(
        ok,
        f"{duplicates} duplicates, {silently} lost silently, "
        f"rows all finished: {all(r['all_rows_finished'] for r in results)}",
    )


if __name__ == "__main__":
    main()
