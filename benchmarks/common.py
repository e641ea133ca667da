"""Shared setup for the benchmark scripts: settings, a fresh database, pages, subscribers,
real ``db_worker`` processes and an SMTP sink.

Import this module before anything that touches Django, then call :func:`setup`.
"""

from __future__ import annotations

import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "var" / "bench"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def setup(name: str, database_url: str | None = None, **env: str) -> Path | str:
    """Point Django at a fresh SQLite file var/bench/<name>.sqlite3, set up Django, migrate.

    With ``database_url`` (``postgres://user@host:port/dbname``), that PostgreSQL database is
    dropped if it exists and created afresh instead (benchmarks/settings.py reads it from
    WAGTAIL_TASKS_BENCH_DATABASE_URL).

    ``env`` adds WAGTAIL_TASKS_BENCH_* variables (read by benchmarks/settings.py) for this
    process; :func:`worker_env` passes the same database to worker processes.
    """
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    if database_url:
        recreate_postgres_database(database_url)
        os.environ["WAGTAIL_TASKS_BENCH_DATABASE_URL"] = database_url
        database: Path | str = database_url
        label = f"PostgreSQL database {database_url.rsplit('/', 1)[-1]}"
    else:
        database = BENCH_DIR / f"{name}.sqlite3"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        os.environ["WAGTAIL_TASKS_BENCH_DB"] = str(database)
        label = f"database {database.relative_to(ROOT)}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"(fresh {label} migrated in {time.perf_counter() - started:.1f} s)", flush=True)
    return database


def _postgres_maintenance(database_url: str, *statements: str) -> None:
    """Run DROP/CREATE DATABASE statements ({} is the URL's database) on the "postgres" db."""
    from urllib.parse import urlsplit

    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    name = sql.Identifier(parts.path.lstrip("/"))
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        for statement in statements:
            conn.execute(sql.SQL(statement).format(name))


def recreate_postgres_database(database_url: str) -> None:
    """DROP (if it exists) and CREATE the PostgreSQL database a postgres:// URL names."""
    _postgres_maintenance(
        database_url, "DROP DATABASE IF EXISTS {} WITH (FORCE)", "CREATE DATABASE {}"
    )


def drop_postgres_database(database_url: str) -> None:
    _postgres_maintenance(database_url, "DROP DATABASE IF EXISTS {} WITH (FORCE)")


def print_header(title: str, description: str = "") -> None:
    import django
    import wagtail

    line = "=" * 78
    print(line)
    print(title)
    if description:
        print(description)
    print(line)
    try:
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    print(
        f"Python {platform.python_version()} | Django {django.get_version()} | "
        f"Wagtail {wagtail.__version__} | SQLite {sqlite3.sqlite_version} | "
        f"CPUs {os.cpu_count()} | load avg {load}"
    )
    print(f"Platform: {platform.platform()}")
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            print(
                f"Database: PostgreSQL {cursor.fetchone()[0]} ({connection.settings_dict['NAME']})"
            )
    print(f"Code: {code_version()}")
    print(line, flush=True)


def code_version() -> str:
    """The git commit, plus a short hash of every uncommitted file under wagtail_tasks/.

    Others change the package while benchmarks run: this says which code was measured.
    """
    import hashlib

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return ""

    head = git("rev-parse", "--short", "HEAD") or "?"
    changed = [
        line[3:]
        for line in git("status", "--porcelain", "--", "wagtail_tasks").splitlines()
        if line[3:].endswith(".py")
    ]
    if not changed:
        return f"git {head}, wagtail_tasks/ clean"
    parts = []
    for name in changed:
        path = ROOT / name
        digest = hashlib.sha1(path.read_bytes()).hexdigest()[:8] if path.is_file() else "gone"
        parts.append(f"{name.removeprefix('wagtail_tasks/')}@{digest}")
    return f"git {head} + uncommitted: {', '.join(parts)}"


# --- Pages and subscribers -------------------------------------------------------------------


def home_page():
    from wagtail.models import Page

    return Page.objects.get(depth=2)


def make_section(title: str, parent=None):
    from tests.testapp.models import SectionPage

    parent = parent or home_page()
    section = SectionPage(title=title, live=True)
    parent.add_child(instance=section)
    return section


def make_draft_article(section, title: str):
    """A never-published ArticlePage under ``section``: publishing it notifies."""
    from tests.testapp.models import ArticlePage

    article = ArticlePage(title=title, live=False, body="<p>Some text.</p>")
    section.add_child(instance=article)
    return article


def add_subscribers(page, count: int, prefix: str = "reader") -> None:
    """``count`` confirmed subscriptions to ``page`` (and the pages below it), fast."""
    from django.utils import timezone

    from wagtail_tasks.notifications.models import Subscription, SubscriptionStatus

    now = timezone.now()
    batch = 2000
    for start in range(0, count, batch):
        Subscription.objects.bulk_create(
            [
                Subscription(
                    page_id=page.pk,
                    email=f"{prefix}{n}@example.com",
                    status=SubscriptionStatus.CONFIRMED,
                    include_descendants=True,
                    confirmed_at=now,
                )
                for n in range(start, min(start + batch, count))
            ]
        )


PATH_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # treebeard's MP_Node path alphabet


def path_step(n: int) -> str:
    """The 4-character treebeard path step of a page's ``n``-th child (1-based)."""
    digits = ""
    for _ in range(4):
        n, rest = divmod(n, 36)
        digits = PATH_ALPHABET[rest] + digits
    return digits


def add_bulk_pages(
    parent, count: int, prefix: str = "bulk", published_at=None, owner=None, batch: int = 2000
) -> list[int]:
    """Bulk-insert ``count`` live plain ``Page`` rows below ``parent`` (fast: no signals, no
    revisions), appended after its existing children. With ``published_at`` they look
    published (``first/last_published_at``); ``owner`` sets their owner. Returns their pks
    where the database reports them (PostgreSQL, SQLite), in path order.
    """
    import uuid

    from django.contrib.contenttypes.models import ContentType
    from wagtail.models import Locale, Page

    parent = Page.objects.get(pk=parent.pk)
    content_type = ContentType.objects.get_for_model(Page)
    locale = Locale.get_default()
    start = parent.numchild + 1
    pks: list[int] = []
    for first in range(start, start + count, batch):
        created = Page.objects.bulk_create(
            [
                Page(
                    title=f"{prefix.capitalize()} page number {n} about wombats",
                    draft_title=f"{prefix.capitalize()} page number {n} about wombats",
                    slug=f"{prefix}-{n}",
                    path=parent.path + path_step(n),
                    depth=parent.depth + 1,
                    numchild=0,
                    url_path=f"{parent.url_path}{prefix}-{n}/",
                    content_type=content_type,
                    locale=locale,
                    translation_key=uuid.uuid4(),
                    live=True,
                    owner=owner,
                    first_published_at=published_at,
                    last_published_at=published_at,
                )
                for n in range(first, min(first + batch, start + count))
            ]
        )
        pks.extend(page.pk for page in created if page.pk is not None)
    Page.objects.filter(pk=parent.pk).update(numchild=parent.numchild + count)
    return pks


def analyze() -> None:
    """PostgreSQL: ANALYZE after bulk inserts, as autovacuum would before long (SQLite: no-op)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def publish(page):
    """Publish the latest draft as the editor does in code: new revision, then publish.

    Committed on return: the fan-out task is a row in the database backend's queue.
    """
    revision = page.save_revision()
    revision.publish()
    page.refresh_from_db()
    return revision


# --- Worker processes ------------------------------------------------------------------------


def worker_env(**bench_env: str | int) -> dict[str, str]:
    """Environment for a subprocess that uses the same settings and database as this one."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    for key, value in bench_env.items():
        env[f"WAGTAIL_TASKS_BENCH_{key.upper()}"] = str(value)
    return env


def worker_command(*extra: str, launcher: Sequence[str] | None = None) -> list[str]:
    """The real django-tasks-db worker, as the tests run it, on the ``default`` backend."""
    from tests.worker import worker_command

    return worker_command(*extra, backend="default", launcher=launcher)


def start_worker(
    env: dict[str, str],
    log_name: str,
    *extra: str,
    launcher: Sequence[str] | None = None,
    batch: bool = True,
) -> subprocess.Popen:
    """Start one ``db_worker``; output to a log file.

    With ``batch`` it drains the queue and exits; without, it runs until :func:`stop_worker`.
    """
    log = open(BENCH_DIR / f"{log_name}.log", "w")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        worker_command(*(["--batch"] if batch else []), *extra, launcher=launcher),
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    process.log_file = log  # type: ignore[attr-defined]
    return process


def finish_worker(process: subprocess.Popen, timeout: float = 300) -> None:
    try:
        process.wait(timeout=timeout)
    finally:
        process.log_file.close()  # type: ignore[attr-defined]
    if process.returncode != 0:
        log = Path(process.log_file.name).read_text()[-3000:]  # type: ignore[attr-defined]
        raise RuntimeError(f"worker exited with {process.returncode}:\n{log}")


def stop_worker(process: subprocess.Popen) -> None:
    """Stop a long-running worker the way a process manager does (SIGTERM), and check it."""
    process.terminate()
    try:
        finish_worker(process, timeout=60)
    except RuntimeError:
        # db_worker installs its SIGTERM handler only once Django is set up: a worker that
        # was still starting (a chaos run's fresh replacement) dies of the signal, no failure.
        if process.returncode != -signal.SIGTERM:
            raise


def wait_for_messages(sink, expected: int, process: subprocess.Popen, timeout: float = 600) -> bool:
    """Wait until the sink has ``expected`` messages; give up early if the worker has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sink.count >= expected:
            return True
        if process.poll() is not None:
            # Exited: anything still in flight arrives within a moment, or never.
            return sink.wait_for(expected, timeout=2)
        time.sleep(0.02)
    return sink.count >= expected


def check_worker_log(log_name: str) -> list[str]:
    """Lines of a worker log that report a failed task (there should be none)."""
    text = (BENCH_DIR / f"{log_name}.log").read_text()
    return [line for line in text.splitlines() if "FAILED" in line or "Traceback" in line]


# --- Figures ---------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_list(values: Sequence[float], fmt: str = "{:.1f}") -> str:
    return "[" + ", ".join(fmt.format(v) for v in values) + "]"


def verdict(ok: bool, text: str) -> None:
    print(f"VERDICT: {'PASS' if ok else 'FAIL'} - {text}", flush=True)
