"""Real RQ workers and Redis servers for the end-to-end tests of the RQ backend."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings

from tests.conftest import ON_CI
from tests.worker import ROOT, worker_env

QUEUES = ("wt-default", "wt-sending")


def redis_reachable(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def require_redis() -> None:
    """Skip (with the reason) when Redis is not there, except on CI, where it must be."""
    if redis_reachable():
        return
    reason = "Redis is unreachable on 127.0.0.1:6379: the RQ backend tests cannot run"
    if ON_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def empty_queues(*names: str) -> None:
    import django_rq

    for name in names or QUEUES:
        queue = django_rq.get_queue(name)
        queue.empty()
        for registry in (
            queue.started_job_registry,
            queue.failed_job_registry,
            queue.finished_job_registry,
            queue.scheduled_job_registry,
        ):
            for job_id in registry.get_job_ids():
                queue.connection.delete(f"rq:job:{job_id}", f"rq:results:{job_id}")
            queue.connection.delete(registry.key)


def rq_env(smtp_port: int, route: str = "rq", queue: str = "wt-default", **extra: str) -> dict:
    env = worker_env(smtp_port, batch_size=int(extra.pop("batch_size", 100)))
    env.update(WAGTAIL_TASKS_TEST_ROUTE=route, WAGTAIL_TASKS_TEST_QUEUE=queue, **extra)
    return env


def rq_worker_command(*queues: str, burst: bool = True, simple: bool = False) -> list[str]:
    """``simple``: RQ's SimpleWorker, which runs jobs in its own process instead of a forked
    work horse (in a session of its own, that a kill of the worker's group would not reach)."""
    return [
        sys.executable,
        "-m",
        "django",
        "rqworker",
        "--job-class",
        "django_tasks_rq.Job",
        "--skip-checks",
        *(["--burst"] if burst else []),
        *(["--worker-class", "rq.worker.SimpleWorker"] if simple else []),
        *(queues or QUEUES),
    ]


def rq_drain(env: dict[str, str], *queues: str, timeout: float = 120) -> str:
    """Run one RQ worker in burst mode (it exits once the queues are empty) and wait."""
    process = subprocess.run(
        rq_worker_command(*queues),
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    assert process.returncode == 0, process.stdout[-5000:]
    return process.stdout


class RedisServer:
    """A throwaway redis-server of the test's own, on the port the "rq-own" alias uses."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or settings.OWN_REDIS_PORT
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            reason = "redis-server is not installed: the backend-down test cannot run"
            if ON_CI:
                pytest.fail(reason)
            pytest.skip(reason)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if redis_reachable(port=self.port):
                return self
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        for _ in range(100):
            if not redis_reachable(port=self.port):
                return
            time.sleep(0.05)


def kill_group(process: subprocess.Popen, sig: int) -> None:
    """Signal a worker started with ``start_new_session=True`` and its work horse."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    process.wait()
