"""Run the real ``db_worker`` command of django-tasks-db in a subprocess, on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """A URL for the database this test run uses (the test database, not the configured one)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def worker_env(smtp_port: int, batch_size: int = 100) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONPATH=str(ROOT),
        DATABASE_URL=database_url(),
        WAGTAIL_TASKS_TEST_ROUTE="database",
        WAGTAIL_TASKS_TEST_SMTP_PORT=str(smtp_port),
        WAGTAIL_TASKS_TEST_BATCH_SIZE=str(batch_size),
    )
    return env


def worker_command(
    *extra: str, backend: str = "database", launcher: Sequence[str] | None = None
) -> list[str]:
    """The django-tasks-db worker on every queue, polling fast. ``launcher`` replaces
    ``python -m django`` (it must run the management command named by its arguments)."""
    return [
        *(launcher or (sys.executable, "-m", "django")),
        "db_worker",
        "--backend",
        backend,
        "--queue-name",
        "*",
        "--no-startup-delay",
        "--interval",
        "0.1",
        "--no-reload",
        *extra,
    ]


def drain(env: dict[str, str], workers: int = 1, timeout: float = 180) -> list[str]:
    """Start ``workers`` processes that work until no task is ready, and wait for them."""
    processes = [
        subprocess.Popen(
            worker_command("--batch"),
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(workers)
    ]
    outputs = []
    for process in processes:
        out, _ = process.communicate(timeout=timeout)
        outputs.append(out)
        assert process.returncode == 0, out[-5000:]
    return outputs
