"""A slow mail server must not slow a request down when the site sends through the task backend.

A real Wagtail request that sends an email (the admin's password reset POST, test Client) and a
bare ``send_mail()`` call, each timed with ``EMAIL_BACKEND`` set to Django's SMTP backend and to
``wagtail_tasks.mail.TaskEmailBackend`` (the "email" group on the database task backend, no
worker running), interleaved, against a ``MailSink`` that waits 200 ms before accepting each
message. Then one ``db_worker --batch`` drains the queue and every queued message must arrive.

    .venv/bin/python benchmarks/mail_backend.py [--repeat 20] [--accept-delay 0.2]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402
from sandbox.mailsink import MailSink, free_port  # noqa: E402

TARGET_RATIO = 0.25  # the task backend's request takes at most a quarter of the SMTP one
SMTP = "django.core.mail.backends.smtp.EmailBackend"
TASKS = "wagtail_tasks.mail.TaskEmailBackend"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="measured runs per case")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs per case")
    parser.add_argument("--accept-delay", type=float, default=0.2, help="seconds per message")
    args = parser.parse_args()

    port = free_port()
    common.setup("mail_backend", WAGTAIL_TASKS_BENCH_SMTP_PORT=str(port))
    common.print_header(
        "Benchmark: send_mail in a request, task email backend vs plain SMTP",
        f"Mail server accepts each message after {args.accept_delay * 1000:.0f} ms; "
        "task backend on the database task backend, no worker running while timing.",
    )

    from django.contrib.auth import get_user_model
    from django.core.mail import send_mail
    from django.test import Client, override_settings

    from wagtail_tasks.mail.models import QueuedEmail

    get_user_model().objects.create_user("editor", "editor@example.com", "x")
    client = Client()

    def password_reset() -> None:
        response = client.post("/admin/password_reset/", {"email": "editor@example.com"})
        assert response.status_code == 302, response.status_code

    def bare_send_mail() -> None:
        assert send_mail("Hello", "A message.", None, ["reader@example.com"]) == 1

    actions = {"request": password_reset, "send_mail": bare_send_mail}
    backends = {"smtp": SMTP, "task": TASKS}
    times: dict[tuple[str, str], list[float]] = {
        (action, backend): [] for action in actions for backend in backends
    }

    def run(action: str, backend: str) -> float:
        with override_settings(EMAIL_BACKEND=backends[backend]):
            gc.collect()
            t0 = time.perf_counter()
            actions[action]()
            return (time.perf_counter() - t0) * 1000

    with MailSink(port=port, keep_messages=False, accept_delay=args.accept_delay) as sink:
        order = list(backends)
        for n in range(args.warmup + args.repeat):
            for action in actions:
                for backend in order if n % 2 == 0 else order[::-1]:
                    elapsed = run(action, backend)
                    if n >= args.warmup:
                        times[(action, backend)].append(elapsed)
        direct = sink.count
        queued = QueuedEmail.objects.count()
        started = time.perf_counter()
        worker = common.start_worker(common.worker_env(smtp_port=port), "mail_backend")
        common.finish_worker(worker)
        delivered = sink.count - direct
        drain_seconds = time.perf_counter() - started
        failures = common.check_worker_log("mail_backend")

    print()
    print(f"{'case':<40}{'median ms':>10}{'min ms':>9}{'max ms':>9}")
    labels = {"request": "password reset request", "send_mail": "send_mail() call"}
    for (action, backend), values in times.items():
        print(
            f"{labels[action] + ', ' + backend:<40}{common.median(values):>10.1f}"
            f"{min(values):>9.1f}{max(values):>9.1f}"
        )
    print()
    ratios = {}
    for action in actions:
        task_ms = common.median(times[(action, "task")])
        smtp_ms = common.median(times[(action, "smtp")])
        ratios[action] = task_ms / smtp_ms
        print(
            f"{labels[action]}: task / smtp = {ratios[action]:.3f} "
            f"({task_ms:.1f} vs {smtp_ms:.1f} ms)"
        )
    print(
        f"sent directly over SMTP while timing: {direct}; queued by the task backend: {queued}; "
        f"delivered by one db_worker --batch afterwards: {delivered} in {drain_seconds:.1f} s "
        f"(Python start-up included); queued emails left: {QueuedEmail.objects.count()}"
    )
    if failures:
        print("worker log reports failures:", *failures[:5], sep="\n  ")
    ok = (
        all(ratio <= TARGET_RATIO for ratio in ratios.values())
        and delivered == queued
        and not QueuedEmail.objects.exists()
        and not failures
    )
    common.verdict(
        ok,
        f"password reset request {common.median(times[('request', 'task')]):.1f} ms with the "
        f"task backend vs {common.median(times[('request', 'smtp')]):.1f} ms over SMTP "
        f"(ratio {ratios['request']:.3f}); send_mail() {ratios['send_mail']:.3f}; "
        f"target <= {TARGET_RATIO:.2f}; {delivered}/{queued} queued messages delivered afterwards",
    )


if __name__ == "__main__":
    main()
