"""The task email backend with real parts: the database backend, a db_worker, an SMTP server
that refuses connections, then answers 451, then accepts."""

import subprocess
import time

import pytest
from django.core.mail import EmailMessage, send_mail

from sandbox.mailsink import MailSink, free_port
from tests.mail.helpers import PNG
from tests.worker import ROOT, drain, worker_command, worker_env
from wagtail_tasks.mail.models import QueuedEmail
from wagtail_tasks.mail.storage import mail_storage
from wagtail_tasks.models import TaskRecord, TaskStatus

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.worker,
]

RECIPIENTS = ["ann@example.com", "bob@example.com", "carol@example.com"]


def wait_until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_failing_then_recovering_server_gets_each_message_exactly_once(settings):
    settings.EMAIL_BACKEND = "wagtail_tasks.mail.TaskEmailBackend"
    settings.WAGTAIL_TASKS = {"email": {"backend": "database"}}
    port = free_port()  # nothing listens yet: connections are refused
    for address in RECIPIENTS:
        send_mail(f"For {address}", "Hello", None, [address])  # committed: queued at once

    env = worker_env(port)
    env["WAGTAIL_TASKS_TEST_RETRY_DELAY"] = "1.5"  # retries after 1.5 s, then 3 s
    worker = subprocess.Popen(
        worker_command(), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        refused = TaskRecord.objects.filter(status=TaskStatus.QUEUED, attempts=1)
        assert wait_until(lambda: refused.count() == 3), "first attempts did not run"
        assert "ConnectionRefusedError" in refused.first().message
        with MailSink(port=port, temporary_failures=3) as sink:  # up: 451 three times
            done = TaskRecord.objects.filter(status=TaskStatus.SUCCEEDED)
            assert wait_until(lambda: done.count() == 3), list(
                TaskRecord.objects.values_list("status", "attempts", "message")
            )
            time.sleep(0.5)  # anything sent twice would arrive now
            assert sorted(sink.recipients) == RECIPIENTS  # each exactly once
            assert sink.refused_count == 3
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert all(attempts >= 3 for attempts in done.values_list("attempts", flat=True)), output
    assert not QueuedEmail.objects.exists()


def test_a_worker_process_sends_a_large_attachment_from_the_private_storage(settings):
    settings.EMAIL_BACKEND = "wagtail_tasks.mail.TaskEmailBackend"
    settings.WAGTAIL_TASKS = {"email": {"backend": "database"}}
    content = PNG * 200  # 400 KB, over the 256 KB inline limit
    message = EmailMessage("Report", "Attached.", None, ["ann@example.com"])
    message.attach("report.bin", content, "application/octet-stream")
    message.send()
    (name,) = [a["content"]["file"] for a in QueuedEmail.objects.get().payload["attachments"]]
    assert mail_storage().exists(name)

    with MailSink() as sink:
        drain(worker_env(sink.port))
        assert sink.count == 1
        part = next(p for p in sink.messages[0].walk() if p.get_filename() == "report.bin")
        assert part.get_payload(decode=True) == content
    assert not mail_storage().exists(name) and not QueuedEmail.objects.exists()
    assert TaskRecord.objects.get().status == TaskStatus.SUCCEEDED
