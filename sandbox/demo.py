"""``python -m sandbox.demo`` (``make demo``): the sandbox site with its worker and mail sink.

Migrates and seeds the database (idempotent), then runs three processes together:

* ``runserver``: the site and the Wagtail admin on 127.0.0.1:$DEMO_PORT (default 8000);
* ``db_worker``: django-tasks-db's worker, for every queue;
* ``sandbox.mailsink``: an SMTP server on 127.0.0.1:$SMTP_PORT (default 1025) that saves every
  email as var/mail/*.eml.

Ctrl-C (or SIGTERM) stops all three. If one of them dies, the others are stopped too and the
demo exits non-zero. ``DEMO_SUBSCRIBERS`` (default 1000) sets how many subscribers are seeded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from wagtail_tasks.task_api import DATABASE_BACKEND

ROOT = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(ROOT / "sandbox" / "manage.py")]
STOP_TIMEOUT = 10.0  # seconds each process gets to exit after SIGTERM before SIGKILL


@dataclass
class Child:
    name: str
    args: list[str]
    process: subprocess.Popen[str] | None = None
    pump: threading.Thread | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        # A session of its own: Ctrl-C reaches only this script, which then stops the
        # children in order (web and worker before the mail sink they send to).
        self.process = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.pump = threading.Thread(target=self._prefix_output, daemon=True)
        self.pump.start()

    def _prefix_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            print(f"{self.name:>6} | {line}", end="", flush=True)

    def poll(self) -> int | None:
        return self.process.poll() if self.process else None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(
                f"  demo | {self.name} did not stop in {STOP_TIMEOUT:.0f}s; killing it", flush=True
            )
            self.process.kill()
            self.process.wait()
        if self.pump is not None:
            self.pump.join(timeout=2)


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(
    port: int, children: list[Child], stop: threading.Event, timeout: float = 60.0
) -> bool:
    """Wait until the web server accepts connections; False if stopped, a child died or
    time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if any(child.poll() is not None for child in children):
            return False
        if port_in_use(port):
            return True
        stop.wait(0.2)
    return False


def banner(web_port: int, smtp_port: int, worker: bool) -> str:
    base = f"http://127.0.0.1:{web_port}"
    processes = "all three" if worker else "both"
    lines = [
        "",
        "=" * 72,
        "  wagtail-tasks sandbox is running",
        "",
        f"  Site:    {base}/",
        f"  Admin:   {base}/admin/        login: admin / admin",
        f"  Mail:    SMTP on 127.0.0.1:{smtp_port}; every email is saved as var/mail/*.eml,",
        "           and var/mail/COUNT holds how many arrived",
        "  Worker:  "
        + ("django-tasks-db db_worker, all queues" if worker else "none (TASKS_BACKEND is set)"),
        "",
        '  Try it:  in the admin, open News > "Ready to publish" and publish it.',
        "",
        f"  Ctrl-C stops {processes}.",
        "=" * 72,
        "",
    ]
    return "\n".join(lines)


def run(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(args, cwd=ROOT, env=env, check=True)


def main() -> int:
    web_port = int(os.environ.get("DEMO_PORT", "8000"))
    smtp_port = int(os.environ.get("SMTP_PORT", "1025"))
    subscribers = int(os.environ.get("DEMO_SUBSCRIBERS", "1000"))
    backend = os.environ.get("TASKS_BACKEND", DATABASE_BACKEND)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sandbox.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        # Settings and seed read these: links in emails and the mail sink follow the ports.
        "DEMO_PORT": str(web_port),
        "EMAIL_PORT": str(smtp_port),
    }

    for port, variable in ((web_port, "DEMO_PORT"), (smtp_port, "SMTP_PORT")):
        if port_in_use(port):
            print(f"demo: port {port} is already in use; stop what uses it or set {variable}.")
            return 1

    (ROOT / "var").mkdir(exist_ok=True)
    try:
        run([*MANAGE, "migrate", "--noinput", "-v", "1"], env)
        run([*MANAGE, "seed_demo", "--subscribers", str(subscribers)], env)
    except subprocess.CalledProcessError as exc:
        print(f"demo: {' '.join(exc.cmd[2:])} failed (exit code {exc.returncode}).")
        return 1
    except KeyboardInterrupt:
        return 130

    children = [Child("web", [*MANAGE, "runserver", f"127.0.0.1:{web_port}", "--noreload"])]
    worker = backend == DATABASE_BACKEND
    if worker:
        children.append(
            Child(
                "worker",
                # Every queue; no autoreload (it would restart mid-task); poll twice a second.
                [*MANAGE, "db_worker", "--queue-name", "*", "--no-reload"]
                + ["--interval", "0.5", "--no-startup-delay"],
            )
        )
    children.append(
        Child(
            "mail",
            [sys.executable, "-m", "sandbox.mailsink"]
            + ["--port", str(smtp_port), "--folder", "var/mail"],
        )
    )

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    for child in children:
        child.start(env)

    exit_code = 0
    if wait_for_port(web_port, children, stop):
        print(banner(web_port, smtp_port, worker), flush=True)
    elif not stop.is_set():
        dead = ", ".join(f"{c.name} ({c.poll()})" for c in children if c.poll() is not None)
        print(f"  demo | the web server did not start; exited: {dead or 'none'}", flush=True)
        exit_code = 1
        stop.set()

    while not stop.wait(0.5):
        dead = [child for child in children if child.poll() is not None]
        if dead:
            for child in dead:
                print(
                    f"  demo | {child.name} exited unexpectedly (exit code {child.poll()}); "
                    "stopping the others",
                    flush=True,
                )
            exit_code = 1
            break

    print("  demo | stopping ...", flush=True)
    for child in children:
        child.stop()
    print("  demo | stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
