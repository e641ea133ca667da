"""Settings for the benchmark scripts and the worker processes they start.

Everything varies through environment variables, set by ``benchmarks/common.py`` for the
benchmark process and for each ``db_worker`` subprocess:

- ``WAGTAIL_TASKS_BENCH_DB``: the SQLite file (a fresh one per script run, under var/bench/);
- ``WAGTAIL_TASKS_BENCH_DATABASE_URL``: a database URL (``postgres://...``) used instead of
  the SQLite file when set (panel_endpoint.py); SQLite stays the default;
- ``WAGTAIL_TASKS_BENCH_SMTP_PORT``: the MailSink port (SMTP email backend when set);
- ``WAGTAIL_TASKS_BENCH_BATCH_SIZE``: ``WAGTAIL_TASKS_SEND_BATCH_SIZE`` (default 100);
- ``WAGTAIL_TASKS_BENCH_SENDING``: the TASKS alias the "sending" group goes to (default
  "default"; "parked" is a database backend alias that no worker serves).
"""

import os
from pathlib import Path

from tests.settings import *  # noqa: F403
from wagtail_tasks.task_api import DATABASE_BACKEND, DUMMY_BACKEND, IMMEDIATE_BACKEND, RQ_BACKEND

ROOT = Path(__file__).resolve().parent.parent

DEBUG = False

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "WAGTAIL_TASKS_BENCH_DB", str(ROOT / "var" / "bench" / "bench.sqlite3")
        ),
        # As in tests/settings.py: a web process and a worker write at once.
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
        "CONN_MAX_AGE": int(os.environ.get("WAGTAIL_TASKS_BENCH_CONN_MAX_AGE", 0)),
    }
}

if database_url := os.environ.get("WAGTAIL_TASKS_BENCH_DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(database_url, conn_max_age=0)}
    DATABASES["default"]["CONN_MAX_AGE"] = int(
        os.environ.get("WAGTAIL_TASKS_BENCH_CONN_MAX_AGE", 0)
    )
    if (
        DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
        and "django.contrib.postgres" not in INSTALLED_APPS  # noqa: F405
    ):
        INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.postgres"]  # noqa: F405

TASKS = {
    "default": {"BACKEND": DATABASE_BACKEND, "QUEUES": ["default"]},
    # Same table, another backend_name: a worker started with --backend default never runs it.
    "parked": {"BACKEND": DATABASE_BACKEND, "QUEUES": ["default"]},
    # backends_rate.py: the same notification on every kind of backend.
    "immediate": {"BACKEND": IMMEDIATE_BACKEND},
    "dummy": {"BACKEND": DUMMY_BACKEND},
    "rq": {"BACKEND": RQ_BACKEND, "QUEUES": ["wt-bench"]},
}
RQ_QUEUES = {"default": {"URL": REDIS_URL}, "wt-bench": {"URL": REDIS_URL}}  # noqa: F405

# WAGTAIL_TASKS_BENCH_ROUTE: "alias" or "alias:queue" for the notifications and sending groups.
_route, _, _queue = os.environ.get("WAGTAIL_TASKS_BENCH_ROUTE", "default").partition(":")
WAGTAIL_TASKS = {
    "notifications": {"backend": _route, "queue": _queue or "default"},
    "sending": {
        "backend": os.environ.get("WAGTAIL_TASKS_BENCH_SENDING", _route),
        "queue": _queue or "default",
    },
    "email": {"backend": "default"},
}
WAGTAIL_TASKS_SEND_BATCH_SIZE = int(os.environ.get("WAGTAIL_TASKS_BENCH_BATCH_SIZE", 100))
# chaos.py: find dead workers' work quickly, and retry a stopped mail server quickly.
WAGTAIL_TASKS_STUCK_AFTER = float(os.environ.get("WAGTAIL_TASKS_BENCH_STUCK_AFTER", 300))
WAGTAIL_TASKS_PROGRESS_INTERVAL = float(os.environ.get("WAGTAIL_TASKS_BENCH_PROGRESS_INTERVAL", 1))
if retry_delay := os.environ.get("WAGTAIL_TASKS_BENCH_RETRY_DELAY"):
    WAGTAIL_TASKS_SEND_RETRY_DELAY = float(retry_delay)
    WAGTAIL_TASKS_SEND_RETRIES = 12

if smtp_port := os.environ.get("WAGTAIL_TASKS_BENCH_SMTP_PORT"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = "127.0.0.1"
    EMAIL_PORT = int(smtp_port)
else:
    # No sink given (publish_request.py): nothing is sent during a request anyway.
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# Quiet: the worker logs every task at INFO on stdout; scripts send that to a log file.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
