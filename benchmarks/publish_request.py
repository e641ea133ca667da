"""The editor's publish request must not depend on the number of subscribers.

Publishes never-published ArticlePages through the real admin edit view (Django test Client,
logged in as a superuser, POST with action-publish) in a section with 10,000 confirmed
subscribers and in a section with none, interleaved, and compares the medians and the number
of SQL queries. No worker runs: the fan-out waits in the database queue. The verdict uses the
median of the per-repetition ratios (the two cases of a repetition run back to back), which a
noisy machine's slow and fast spells do not skew; the ratio of the medians is printed too.

    .venv/bin/python benchmarks/publish_request.py [--subscribers 10000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402

TARGET_RATIO = 1.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30, help="measured requests per case")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured requests per case")
    args = parser.parse_args()

    common.setup("publish_request")
    common.print_header(
        "Benchmark: publish request time vs number of subscribers",
        f"Admin edit view POST (action-publish) of a never-published ArticlePage; "
        f"{args.subscribers:,} vs 0 confirmed subscribers; no worker running.",
    )

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from wagtail_tasks.models import TaskRecord, TaskStatus
    from wagtail_tasks.notifications.models import Delivery, Notification

    big = common.make_section("Big section")
    empty = common.make_section("Empty section")
    started = time.perf_counter()
    common.add_subscribers(big, args.subscribers)
    print(f"({args.subscribers:,} subscribers created in {time.perf_counter() - started:.1f} s)")

    user = get_user_model().objects.create_superuser("editor", "editor@example.com", "x")
    client = Client()
    client.force_login(user)

    cases = {"with": big, "without": empty}
    times: dict[str, list[float]] = {"with": [], "without": []}
    queries: dict[str, list[int]] = {"with": [], "without": []}
    ours: dict[str, set[tuple[int, int]]] = {"with": set(), "without": set()}
    counter = 0

    def publish_once(case: str) -> tuple[float, int]:
        nonlocal counter
        counter += 1
        article = common.make_draft_article(cases[case], f"Article {counter}")
        url = reverse("wagtailadmin_pages:edit", args=[article.pk])
        data = {"title": article.title, "slug": article.slug, "body": "[]", "action-publish": "1"}
        gc.collect()
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            response = client.post(url, data)
            elapsed = time.perf_counter() - t0
        if response.status_code != 302:
            raise RuntimeError(f"publish failed ({response.status_code}): {response.content[:500]}")
        notification = Notification.objects.get(page_id=article.pk)
        record = notification.record
        assert record is not None and record.status == TaskStatus.QUEUED, record
        assert record.backend_task_id, "the fan-out was not enqueued after commit"
        sql = [q["sql"] for q in captured.captured_queries]
        ours[case].add(
            (
                sum("wagtail_tasks_" in q for q in sql),
                sum("django_tasks_database_" in q for q in sql),
            )
        )
        return elapsed, len(sql)

    for n in range(args.warmup):
        for case in ("with", "without") if n % 2 == 0 else ("without", "with"):
            publish_once(case)
    for n in range(args.repeat):
        # Alternate the order so that neither case always runs first.
        for case in ("with", "without") if n % 2 == 0 else ("without", "with"):
            elapsed, count = publish_once(case)
            times[case].append(elapsed * 1000)
            queries[case].append(count)

    assert Delivery.objects.count() == 0, "a worker ran: deliveries exist"
    queued = TaskRecord.objects.filter(status=TaskStatus.QUEUED, kind="notification").count()

    med_with = common.median(times["with"])
    med_without = common.median(times["without"])
    ratio = med_with / med_without
    # Each repetition publishes one article of each case back to back: the ratio within a pair
    # cancels the slow and fast spells of a noisy machine, which the ratio of medians does not.
    paired = [w / wo for w, wo in zip(times["with"], times["without"], strict=True)]
    paired_median = common.median(paired)
    print()
    print(f"{'case':<28}{'median ms':>10}{'min ms':>9}{'max ms':>9}   SQL queries per request")
    labels = (("with", f"{args.subscribers:,} subscribers"), ("without", "0 subscribers"))
    for case, label in labels:
        q = sorted(set(queries[case]))
        print(
            f"{label:<28}{common.median(times[case]):>10.1f}{min(times[case]):>9.1f}"
            f"{max(times[case]):>9.1f}   {', '.join(map(str, q))}"
        )
    print()
    print(f"all times, {args.subscribers:,} subscribers (ms): {common.fmt_list(times['with'])}")
    print(f"all times, 0 subscribers (ms):      {common.fmt_list(times['without'])}")
    print(f"ratio of medians (with / without):          {ratio:.3f}")
    print(
        f"median of paired ratios (same repetition):  {paired_median:.3f}  "
        f"(target <= {TARGET_RATIO:.2f}; paired ratios {min(paired):.2f} to {max(paired):.2f})"
    )
    same_queries = set(queries["with"]) == set(queries["without"])
    print(f"same number of SQL queries in both cases: {'yes' if same_queries else 'NO'}")
    for case, label in labels:
        split = ", ".join(
            f"{a} on wagtail_tasks tables + {b} task-queue inserts" for a, b in sorted(ours[case])
        )
        print(f"  of which, {label}: {split}")
    print("  (one queue insert is our fan-out; the rest are Wagtail's own tasks on TASKS default)")
    print(f"fan-out tasks waiting in the queue: {queued} (no worker ran; 0 deliveries)")
    common.verdict(
        paired_median <= TARGET_RATIO and same_queries,
        f"publish request median {med_with:.1f} ms with {args.subscribers:,} subscribers vs "
        f"{med_without:.1f} ms with 0: paired ratio {paired_median:.3f} (ratio of medians "
        f"{ratio:.3f}; target <= {TARGET_RATIO:.2f}), "
        f"queries {'equal' if same_queries else 'DIFFER'}",
    )


if __name__ == "__main__":
    main()
