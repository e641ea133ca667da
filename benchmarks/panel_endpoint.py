"""The editor panel's JSON endpoint must not slow down as the delivery and tracking tables grow.

On PostgreSQL: one published ArticlePage (the "page under test": one notification with 300
deliveries, mixed statuses, its fan-out row and three send batches, and two other tracking
rows) is asked for its panel through the real endpoint (``wagtail_tasks_admin:page_tasks``,
Django test Client logged in as a superuser) N times with only that page's data in the
tables ("empty"), then after 1,000,000 more Delivery rows (1,000 notifications of 1,000 other
pages) and 100,000 more TaskRecord rows (fan-outs, send batches, other kinds, on those pages
and on other targets, mixed statuses) were bulk-inserted with ``INSERT ... SELECT
generate_series`` and ANALYZEd ("loaded"). The load is then deleted again (and the tables
``VACUUM FULL``-ed) and the cycle repeats, so the empty measurements bracket the loaded ones in
the same run: empty, loaded, empty, loaded, empty with the default two rounds.

The page under test's rows are dated 180 days back (an article published half a year ago),
inside the date range of the loaded rows, so that a plan walking an index on ``created_at``
cannot find them at once by luck. Also counts SQL queries per request in both states
(``CaptureQueriesContext``) and prints the ``EXPLAIN ANALYZE`` of each query the endpoint
makes on the package's tables with the load in place, flagging any sequential scan.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_panel \\
        .venv/bin/python benchmarks/panel_endpoint.py [--repeat 50] [--rounds 2]

(``--database-url`` or WAGTAIL_TASKS_BENCH_DATABASE_URL override DATABASE_URL; the database's
name must start with "bench": it is dropped and created afresh, and dropped at the end unless
``--keep``.)
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402

TARGET_RATIO = 2.0
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_panel"
LOAD_MARK = "bench-load"  # target_repr / page_title of every loaded row, to delete them again
BIG_TABLES = ("wagtail_tasks_delivery", "wagtail_tasks_taskrecord", "wagtail_tasks_notification")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "WAGTAIL_TASKS_BENCH_DATABASE_URL", os.environ.get("DATABASE_URL", DEFAULT_URL)
        ),
        help=f"a PostgreSQL database named bench* (dropped and created; default {DEFAULT_URL})",
    )
    parser.add_argument("--repeat", type=int, default=50, help="measured requests per phase")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests per phase")
    parser.add_argument("--rounds", type=int, default=2, help="empty/loaded cycles")
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--other-pages", type=int, default=1_000)
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("this benchmark runs on PostgreSQL: pass a postgres:// --database-url")
    if not args.database_url.rsplit("/", 1)[-1].startswith("bench"):
        # It is dropped and created afresh: never a database of the tests or of a site.
        parser.error("the database's name must start with 'bench' (e.g. bench_panel)")

    common.setup("panel_endpoint", database_url=args.database_url)
    common.print_header(
        "Benchmark: editor panel JSON endpoint time vs size of the delivery/tracking tables",
        f"GET wagtail_tasks_admin:page_tasks for one page (300 deliveries, 6 tracking rows); "
        f"empty tables vs +{args.deliveries:,} deliveries on {args.other_pages:,} other "
        f"notifications and +{args.records:,} tracking rows; {args.rounds} round(s), "
        f"{args.repeat} requests per phase.",
    )

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    page = make_page_under_test()
    user = get_user_model().objects.create_superuser("editor", "editor@example.com", "x")
    client = Client()
    client.force_login(user)
    url = reverse("wagtail_tasks_admin:page_tasks", args=[page.pk])
    print(f"(page under test: {page.pk} {page.title!r}; endpoint {url})", flush=True)

    def request_once() -> tuple[float, int, list[str]]:
        gc.collect()
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - t0
        if response.status_code != 200:
            raise RuntimeError(
                f"endpoint failed ({response.status_code}): {response.content[:500]}"
            )
        data = response.json()
        assert data["active"] is True and "300" in data["html"], data
        return elapsed * 1000, len(captured), [q["sql"] for q in captured.captured_queries]

    def measure(label: str) -> tuple[list[float], set[int], list[str]]:
        for _ in range(args.warmup):
            request_once()
        times, counts, sql = [], set(), []
        for _ in range(args.repeat):
            elapsed, count, sql = request_once()
            times.append(elapsed)
            counts.add(count)
        print(
            f"  {label:<22} median {common.median(times):7.2f} ms  min {min(times):7.2f}  "
            f"max {max(times):7.2f}  queries {sorted(counts)}",
            flush=True,
        )
        return times, counts, sql

    phases: list[tuple[str, list[float]]] = []
    counts = {"empty": set(), "loaded": set()}
    loaded_sql: list[str] = []
    print()
    for round_no in range(1, args.rounds + 1):
        times, c, _ = measure(f"round {round_no} empty")
        phases.append(("empty", times))
        counts["empty"] |= c
        started = time.perf_counter()
        sizes = load(args.deliveries, args.records, args.other_pages)
        print(
            f"  (loaded in {time.perf_counter() - started:.1f} s, incl. ANALYZE: "
            + ", ".join(f"{t.removeprefix('wagtail_tasks_')} {n:,} rows" for t, n in sizes.items())
            + ")",
            flush=True,
        )
        times, c, loaded_sql = measure(f"round {round_no} loaded")
        phases.append(("loaded", times))
        counts["loaded"] |= c
        if round_no == args.rounds:
            explain(loaded_sql)
        started = time.perf_counter()
        unload()
        print(f"  (load deleted, VACUUM FULL in {time.perf_counter() - started:.1f} s)", flush=True)
    times, c, _ = measure("final empty")
    phases.append(("empty", times))
    counts["empty"] |= c

    empty_all = [t for kind, ts in phases if kind == "empty" for t in ts]
    loaded_all = [t for kind, ts in phases if kind == "loaded" for t in ts]
    med_empty, med_loaded = common.median(empty_all), common.median(loaded_all)
    ratio = med_loaded / med_empty
    # Each loaded phase against the mean of the two empty phases around it.
    bracket = []
    for i, (kind, ts) in enumerate(phases):
        if kind == "loaded":
            around = (common.median(phases[i - 1][1]) + common.median(phases[i + 1][1])) / 2
            bracket.append(common.median(ts) / around)
    same_queries = counts["empty"] == counts["loaded"] and len(counts["empty"]) == 1

    print()
    print(f"{'state':<34}{'median ms':>10}{'min ms':>9}{'max ms':>9}   SQL queries per request")
    for kind, values, label in (
        ("empty", empty_all, "empty (page under test only)"),
        ("loaded", loaded_all, f"loaded (+{args.deliveries:,} del.)"),
    ):
        print(
            f"{label:<34}{common.median(values):>10.2f}{min(values):>9.2f}{max(values):>9.2f}   "
            f"{', '.join(map(str, sorted(counts[kind])))}"
        )
    print()
    print(f"ratio of medians (loaded / empty):            {ratio:.3f}  (target <= {TARGET_RATIO})")
    print(f"each loaded phase / its two empty neighbours: {common.fmt_list(bracket, '{:.3f}')}")
    print(f"same number of SQL queries in both states: {'yes' if same_queries else 'NO'}")
    if not args.keep:
        connection.close()
        common.drop_postgres_database(args.database_url)
    common.verdict(
        ratio <= TARGET_RATIO and same_queries,
        f"panel endpoint median {med_loaded:.2f} ms with {args.deliveries:,} deliveries and "
        f"{args.records:,} tracking rows vs {med_empty:.2f} ms empty: ratio {ratio:.3f} "
        f"(target <= {TARGET_RATIO}), queries {'equal' if same_queries else 'DIFFER'} "
        f"({', '.join(map(str, sorted(counts['loaded'])))})",
    )


def make_page_under_test():
    """A published article whose notification is being sent: 300 deliveries, 6 tracking rows."""
    from datetime import timedelta

    from django.utils import timezone

    from wagtail_tasks.kinds import register_kind
    from wagtail_tasks.models import TaskRecord, TaskStatus, target_content_type
    from wagtail_tasks.notifications.models import (
        Delivery,
        DeliveryStatus,
        Notification,
        Subscription,
    )
    from wagtail_tasks.notifications.tasks import KIND_NOTIFY, KIND_SEND

    section = common.make_section("News")
    common.add_subscribers(section, 300)
    article = common.make_draft_article(section, "The page under test")
    common.publish(article)
    notification = Notification.objects.get(page_id=article.pk)
    record = notification.record
    assert record is not None and record.kind == KIND_NOTIFY
    then = timezone.now() - timedelta(days=180)
    ct = target_content_type(article)
    batches = [
        TaskRecord.objects.create(
            kind=KIND_SEND,
            parent=record,
            target_content_type=ct,
            target_object_id=str(article.pk),
            target_repr=article.title,
            status=status,
            progress_total=100,
        )
        for status in (TaskStatus.SUCCEEDED, TaskStatus.RUNNING, TaskStatus.QUEUED)
    ]
    reindex = register_kind("bench.reindex", "Search index update")
    for status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED):
        TaskRecord.objects.create(
            kind=reindex,
            target_content_type=ct,
            target_object_id=str(article.pk),
            target_repr=article.title,
            status=status,
        )
    subscriptions = list(Subscription.objects.filter(page=section).order_by("pk"))
    statuses = (
        [DeliveryStatus.SENT] * 230
        + [DeliveryStatus.FAILED] * 20
        + [DeliveryStatus.SKIPPED] * 10
        + [DeliveryStatus.SENDING] * 10
        + [DeliveryStatus.PENDING] * 30
    )
    Delivery.objects.bulk_create(
        Delivery(
            notification=notification,
            subscription=sub,
            email_key=f"key-{sub.pk}",
            batch=batches[n // 100],
            status=status,
        )
        for n, (sub, status) in enumerate(zip(subscriptions, statuses, strict=True))
    )
    TaskRecord.objects.filter(pk=record.pk).update(
        status=TaskStatus.RUNNING, started_at=then, progress_total=300
    )
    Notification.objects.filter(pk=notification.pk).update(created_at=then, fanned_out_at=then)
    TaskRecord.objects.filter(target_content_type=ct, target_object_id=str(article.pk)).update(
        created_at=then
    )
    Delivery.objects.filter(notification=notification).update(created_at=then)
    return article


def base36(n: int, width: int = 4) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out.rjust(width, "0")


def load(deliveries: int, records: int, other_pages: int) -> dict[str, int]:
    """Bulk-insert the other pages, their notifications and deliveries, and tracking rows."""
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection, transaction
    from wagtail.models import Page

    from wagtail_tasks.notifications.tasks import KIND_CONFIRM, KIND_NOTIFY, KIND_SEND

    home = common.home_page()
    page_ct = ContentType.objects.get_for_model(Page).pk
    user_ct = ContentType.objects.get_for_model(get_user_model()).pk
    start = home.numchild + 1
    paths = [home.path + base36(start + n) for n in range(other_pages)]
    per_notification = deliveries // other_pages
    batches_per = 10
    with connection.cursor() as cursor, transaction.atomic():
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'wagtailcore_page' AND column_name <> 'id'"
        )
        columns = [row[0] for row in cursor.fetchall()]
        override = {
            "path": "p.path",
            "depth": "%s",
            "numchild": "0",
            "title": "'Other page ' || p.n",
            "draft_title": "'Other page ' || p.n",
            "slug": "'other-page-' || p.n",
            "url_path": "'/home/other-page-' || p.n || '/'",
            "content_type_id": "%s",
            "translation_key": "gen_random_uuid()",
            "live": "true",
            "seo_title": f"'{LOAD_MARK}'",
            "latest_revision_id": "NULL",
            "live_revision_id": "NULL",
        }
        select = ", ".join(override.get(c, f"t.{c}") for c in columns)
        cursor.execute(
            f"INSERT INTO wagtailcore_page ({', '.join(columns)}) "
            f"SELECT {select} FROM wagtailcore_page t, "
            f"unnest(%s::text[]) WITH ORDINALITY AS p(path, n) WHERE t.id = %s",
            [home.depth + 1, page_ct, paths, home.pk],
        )
        cursor.execute(
            "UPDATE wagtailcore_page SET numchild = numchild + %s WHERE id = %s",
            [other_pages, home.pk],
        )
        cursor.execute(
            "SELECT array_agg(id ORDER BY id) FROM wagtailcore_page WHERE seo_title = %s",
            [LOAD_MARK],
        )
        page_ids = cursor.fetchone()[0]
        # Tracking rows. Row i: the first other_pages are fan-outs (one per other page), the
        # next other_pages * batches_per their send batches, the rest other kinds on other
        # pages (2/3) and on users (1/3), statuses mixed; dated over the past year.
        fanouts = other_pages
        sends = other_pages * batches_per
        cursor.execute(
            f"""
            INSERT INTO wagtail_tasks_taskrecord (
                kind, target_content_type_id, target_object_id, target_repr, task_path,
                "group", args, backend_alias, queue_name, backend_task_id, status,
                progress_done, progress_total, message, error, attempts, created_at,
                started_at, finished_at)
            SELECT
                CASE WHEN i <= {fanouts} THEN %(notify)s
                     WHEN i <= {fanouts + sends} THEN %(send)s
                     WHEN i %% 3 = 0 THEN %(confirm)s
                     WHEN i %% 3 = 1 THEN 'bench.reindex' ELSE 'bench.report' END,
                CASE WHEN i > {fanouts + sends} AND i %% 3 = 0 THEN %(user_ct)s
                     ELSE %(page_ct)s END,
                CASE WHEN i > {fanouts + sends} AND i %% 3 = 0 THEN (i %% 20000)::text
                     ELSE (%(page_ids)s::bigint[])[1 + (i - 1) %% {other_pages}]::text END,
                %(mark)s, 'bench.task', 'default', '[]'::jsonb, 'default', 'default', '',
                (ARRAY['succeeded','succeeded','succeeded','succeeded','succeeded',
                       'succeeded','failed','cancelled','queued','running'])[1 + i %% 10],
                0, 100, '', '', 1,
                now() - (i %% 365) * interval '1 day' - (i %% 86400) * interval '1 second',
                now() - (i %% 365) * interval '1 day',
                CASE WHEN i %% 10 < 8 THEN now() - (i %% 365) * interval '1 day' END
            FROM generate_series(1, %(records)s) AS i
            """,
            {
                "notify": KIND_NOTIFY,
                "send": KIND_SEND,
                "confirm": KIND_CONFIRM,
                "user_ct": user_ct,
                "page_ct": page_ct,
                "page_ids": page_ids,
                "mark": LOAD_MARK,
                "records": records,
            },
        )
        cursor.execute(
            "SELECT array_agg(id ORDER BY id) FROM wagtail_tasks_taskrecord "
            "WHERE target_repr = %s AND kind = %s",
            [LOAD_MARK, KIND_NOTIFY],
        )
        fanout_ids = cursor.fetchone()[0]
        cursor.execute(
            "UPDATE wagtail_tasks_taskrecord t SET parent_id = f.id FROM ("
            "  SELECT id, row_number() OVER (ORDER BY id) AS n FROM wagtail_tasks_taskrecord"
            "  WHERE target_repr = %s AND kind = %s) f "
            "WHERE t.target_repr = %s AND t.kind = %s "
            "AND f.n = 1 + (t.id - %s) %% %s",
            [LOAD_MARK, KIND_NOTIFY, LOAD_MARK, KIND_SEND, fanout_ids[0], other_pages],
        )
        cursor.execute(
            """
            INSERT INTO wagtail_tasks_notification (
                page_id, revision_id, page_title, trigger, record_id, created_at, fanned_out_at)
            SELECT p.id, NULL, %s, 'first_publish', r.id, r.created_at, r.created_at
            FROM unnest(%s::bigint[], %s::bigint[]) AS x(page_id, record_id)
            JOIN wagtailcore_page p ON p.id = x.page_id
            JOIN wagtail_tasks_taskrecord r ON r.id = x.record_id
            """,
            [LOAD_MARK, page_ids, fanout_ids],
        )
        cursor.execute(
            f"""
            INSERT INTO wagtail_tasks_delivery (
                notification_id, subscription_id, email_key, batch_id, status, reason,
                attempts, created_at, sent_at)
            SELECT n.id, NULL, 'key-' || i, NULL,
                (ARRAY['sent','sent','sent','sent','sent','sent','sent','failed','skipped',
                       'pending'])[1 + i %% 10],
                '', 1, n.created_at, CASE WHEN i %% 10 < 7 THEN n.created_at END
            FROM wagtail_tasks_notification n, generate_series(1, {per_notification}) AS i
            WHERE n.page_title = %s
            """,
            [LOAD_MARK],
        )
    with connection.cursor() as cursor:
        for table in (*BIG_TABLES, "wagtailcore_page"):
            cursor.execute(f"VACUUM ANALYZE {table}")
        return table_sizes(cursor)


def unload() -> None:
    from django.db import connection, transaction

    home = common.home_page()
    with connection.cursor() as cursor, transaction.atomic():
        cursor.execute(
            "DELETE FROM wagtail_tasks_delivery WHERE notification_id IN ("
            "SELECT id FROM wagtail_tasks_notification WHERE page_title = %s)",
            [LOAD_MARK],
        )
        cursor.execute("DELETE FROM wagtail_tasks_notification WHERE page_title = %s", [LOAD_MARK])
        cursor.execute("DELETE FROM wagtail_tasks_taskrecord WHERE target_repr = %s", [LOAD_MARK])
        cursor.execute("DELETE FROM wagtailcore_page WHERE seo_title = %s", [LOAD_MARK])
        cursor.execute(
            "UPDATE wagtailcore_page SET numchild = (SELECT count(*) FROM wagtailcore_page c "
            "WHERE c.path LIKE %s AND c.depth = %s) WHERE id = %s",
            [home.path + "%", home.depth + 1, home.pk],
        )
    with connection.cursor() as cursor:
        for table in (*BIG_TABLES, "wagtailcore_page"):
            cursor.execute(f"VACUUM FULL ANALYZE {table}")


def table_sizes(cursor) -> dict[str, int]:
    sizes = {}
    for table in BIG_TABLES:
        cursor.execute(f"SELECT count(*) FROM {table}")
        sizes[table] = cursor.fetchone()[0]
    return sizes


def explain(sql_list: list[str]) -> None:
    """EXPLAIN ANALYZE the endpoint's queries on the package's tables, with the load in place."""
    from django.db import connection

    print()
    print("  query plans with the load in place (the endpoint's queries on wagtail_tasks_*):")
    seq_scans = []
    with connection.cursor() as cursor:
        for sql in sql_list:
            if "wagtail_tasks_" not in sql:
                continue
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) {sql}")
            plan = [row[0] for row in cursor.fetchall()]
            scans = [
                re.sub(r"\s+\(.*", "", line.strip().removeprefix("-> ").strip())
                for line in plan
                if "Scan" in line
            ]
            runtime = next((line for line in plan if line.startswith("Execution Time")), "")
            table = re.search(r'FROM "(\w+)"', sql)
            print(f"  - {table.group(1) if table else '?'}: {'; '.join(scans)}  [{runtime}]")
            seq_scans += [
                s for s in scans if s.startswith("Seq Scan") and any(t in s for t in BIG_TABLES)
            ]
    print(f"  sequential scans of the big tables: {len(seq_scans)} {seq_scans or ''}")


if __name__ == "__main__":
    main()
