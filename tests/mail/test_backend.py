"""The task email backend: the caller only queues; a task sends with the inner backend."""

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage, send_mail
from django.db import transaction
from django.test import override_settings

from sandbox.mailsink import MailSink, free_port
from tests.conftest import publish
from tests.factories import SubscriptionFactory, SuperuserFactory, UserFactory
from tests.mail.helpers import PNG, full_message, plain_message, summary
from wagtail_tasks.mail.backend import TaskEmailBackend, inner_connection, sending_connection
from wagtail_tasks.mail.models import QueuedEmail
from wagtail_tasks.mail.serialization import MessageNotSerializable
from wagtail_tasks.mail.storage import mail_storage
from wagtail_tasks.mail.tasks import KIND_EMAIL, send_queued_email
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.notifications import emails
from wagtail_tasks.task_api import task_backends

pytestmark = pytest.mark.django_db

TASK_BACKEND = "wagtail_tasks.mail.TaskEmailBackend"


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def through_tasks(settings, port):
    """The site sends with the task backend; workers send over SMTP to ``port``."""
    settings.EMAIL_BACKEND = TASK_BACKEND
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_TIMEOUT = 5


@pytest.fixture
def sink(settings):
    with MailSink() as server:
        through_tasks(settings, server.port)
        yield server


@pytest.fixture
def dummy(settings):
    """Email tasks are kept, not run: the test runs each one as a worker would."""
    settings.WAGTAIL_TASKS = {"email": {"backend": "dummy"}}
    backend = task_backends["dummy"]
    backend.clear()
    return backend


def run_enqueued(backend, run_tasks):
    """Run every kept task once, as a worker would, and what they enqueue after them."""
    done = 0
    while done < len(backend.results):
        result = backend.results[done]
        done += 1
        with run_tasks():
            try:
                send_queued_email.call(*result.args)
            except Exception:  # a failed task: the worker logs it, its row keeps it
                pass


def test_every_field_arrives_as_plain_smtp_would_deliver_it(sink, run_tasks):
    with MailSink() as reference:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_PORT=reference.port
        ):
            full_message().send()
        with run_tasks():
            assert full_message().send() == 1
        assert sink.wait_for(1) and reference.count == 1
    arrived, expected = sink.messages[0], reference.messages[0]
    assert summary(arrived) == summary(expected)
    assert sorted(sink.recipients) == sorted(reference.recipients)
    assert "dave@example.com" in sink.recipients and "Bcc" not in arrived  # bcc: envelope only
    assert arrived["Message-ID"] == "<fixed-id@example.com>"
    png = next(p for p in arrived.walk() if p.get_filename() == "logo.png")
    assert png.get_payload(decode=True) == PNG


def test_the_task_gets_ids_only_and_the_payload_is_removed_once_sent(sink, dummy, run_tasks):
    with run_tasks():
        sent = send_mail("Your code", "It is 1234.", None, ["ann@example.com"])
    assert sent == 1 and sink.count == 0  # queued, not sent, in the request
    record = TaskRecord.objects.get()
    queued = QueuedEmail.objects.get()
    assert record.kind == KIND_EMAIL and record.group == "email"
    assert record.args == [queued.pk]
    (result,) = dummy.results
    assert list(result.args) == [record.pk, queued.pk]
    assert "example.com" not in json.dumps([record.args, list(result.args), record.target_repr])
    assert queued.payload["to"] == ["ann@example.com"]

    run_enqueued(dummy, run_tasks)
    assert sink.count == 1 and sink.messages[0]["Subject"] == "Your code"
    record.refresh_from_db()
    assert record.status == TaskStatus.SUCCEEDED and record.message == "Sent"
    assert not QueuedEmail.objects.exists()  # the tracking row stays, the content goes

    # A redelivered task finds nothing to send.
    with run_tasks():
        send_queued_email.call(*result.args)
    assert sink.count == 1


def test_a_rolled_back_transaction_queues_nothing(sink, run_tasks):
    with run_tasks():
        with pytest.raises(RuntimeError), transaction.atomic():
            plain_message().send()
            raise RuntimeError("the request failed")
    assert not TaskRecord.objects.exists() and not QueuedEmail.objects.exists()
    assert sink.count == 0


def test_a_message_that_cannot_be_serialised_fails_in_the_caller(sink, run_tasks):
    bad = plain_message()
    bad.extra_headers = {"X-Object": object()}
    connection = mail.get_connection()
    with run_tasks():
        with pytest.raises(MessageNotSerializable) as raised:
            connection.send_messages([plain_message(), bad])
    assert str(raised.value) == "The message's header 'X-Object' must be a string, not object."
    # Nothing of that call was queued: the caller knows exactly what happened.
    assert not TaskRecord.objects.exists() and not QueuedEmail.objects.exists()
    assert sink.count == 0


def test_a_refused_call_leaves_no_stored_attachment_behind(sink, settings):
    settings.WAGTAIL_TASKS_MAIL_INLINE_LIMIT = 10
    big = plain_message()
    big.attach("big.bin", PNG, "application/octet-stream")
    bad = plain_message()
    bad.body = 42
    folder = Path(mail_storage().location)
    before = set(folder.iterdir()) if folder.exists() else set()
    with pytest.raises(MessageNotSerializable):
        mail.get_connection().send_messages([big, bad])
    assert set(folder.iterdir()) == before


def test_fail_silently_skips_only_the_bad_message(sink, run_tasks):
    bad = plain_message()
    bad.body = b"bytes body"
    with run_tasks():
        sent = mail.get_connection(fail_silently=True).send_messages([plain_message(), bad])
    assert sent == 1
    assert sink.wait_for(1) and sink.count == 1


def test_messages_without_recipients_are_not_queued(sink, run_tasks):
    with run_tasks():
        assert mail.get_connection().send_messages([EmailMessage("s", "b")]) == 0
    assert not TaskRecord.objects.exists()


def test_connection_options_are_refused_not_dropped():
    with pytest.raises(TypeError) as raised:
        TaskEmailBackend(username="me", password="secret")
    assert str(raised.value) == (
        "TaskEmailBackend does not take connection options (password, username): "
        "the worker connects with the inner backend's own settings."
    )


def test_large_attachments_wait_in_the_private_storage_and_are_removed(
    sink, dummy, run_tasks, settings
):
    settings.WAGTAIL_TASKS_MAIL_INLINE_LIMIT = 1000
    message = plain_message()
    message.attach("big.bin", PNG * 10, "application/octet-stream")
    with run_tasks():
        message.send()
    payload = QueuedEmail.objects.get().payload
    name = payload["attachments"][0]["content"]["file"]
    storage = mail_storage()
    path = Path(storage.path(name))
    assert path.read_bytes() == PNG * 10
    assert not path.resolve().is_relative_to(Path(settings.MEDIA_ROOT).resolve())  # not public
    assert len(json.dumps(payload)) < 1000

    run_enqueued(dummy, run_tasks)
    part = next(p for p in sink.messages[0].walk() if p.get_filename() == "big.bin")
    assert part.get_payload(decode=True) == PNG * 10
    assert not path.exists() and not QueuedEmail.objects.exists()


def test_a_refused_recipient_fails_that_message_only_and_is_not_retried(settings, run_tasks):
    with MailSink(refuse={"gone@example.com"}) as sink:
        through_tasks(settings, sink.port)
        settings.WAGTAIL_TASKS = {"email": {"backend": "dummy"}}
        backend = task_backends["dummy"]
        backend.clear()
        with run_tasks():
            plain_message("ann@example.com").send()
            plain_message("gone@example.com").send()
            plain_message("bob@example.com").send()
        run_enqueued(backend, run_tasks)
        assert sorted(sink.recipients) == ["ann@example.com", "bob@example.com"]
    assert len(backend.results) == 3  # a 5xx answer is not retried
    statuses = list(TaskRecord.objects.values_list("status", flat=True))
    failed = TaskRecord.objects.get(status=TaskStatus.FAILED)
    assert statuses.count(TaskStatus.SUCCEEDED) == 2
    assert failed.error.startswith("SMTPRecipientsRefused:") and "550" in failed.error
    assert failed.attempts == 1
    # Its content stays, so that it can be retried once the address is fixed.
    assert QueuedEmail.objects.get().payload["to"] == ["gone@example.com"]


def test_a_malformed_address_fails_that_message_only(sink, dummy, run_tasks):
    with run_tasks():
        plain_message("a@b@c").send()
        plain_message("ann@example.com").send()
    run_enqueued(dummy, run_tasks)
    assert sink.recipients == ["ann@example.com"]
    failed = TaskRecord.objects.get(status=TaskStatus.FAILED)
    assert failed.attempts == 1
    # Django 5.2 and 6.1 word it differently.
    assert failed.error.startswith("ValueError: Invalid address ") and "a@b@c" in failed.error


def test_a_temporary_failure_is_retried_with_backoff_then_sent_once(settings, dummy, run_tasks):
    settings.WAGTAIL_TASKS_MAIL_RETRY_DELAY = 10
    with MailSink(temporary_failures=2) as sink:
        through_tasks(settings, sink.port)
        with run_tasks():
            plain_message().send()
        run_enqueued(dummy, run_tasks)
        assert sink.count == 1 and sink.refused_count == 2
    first, second, third = dummy.results
    assert first.task.run_after is None
    delays = [(r.task.run_after - r.enqueued_at).total_seconds() for r in (second, third)]
    assert [round(d) for d in delays] == [10, 20]  # doubles each time
    record = TaskRecord.objects.get()
    assert record.status == TaskStatus.SUCCEEDED and record.attempts == 3


def test_a_row_waiting_for_its_retry_shows_the_last_error(settings, dummy, run_tasks):
    through_tasks(settings, free_port())  # nothing listens: connection refused
    with run_tasks():
        plain_message().send()
    with run_tasks():
        send_queued_email.call(*dummy.results[0].args)
    record = TaskRecord.objects.get()
    assert record.status == TaskStatus.QUEUED and record.attempts == 1
    assert record.message.startswith("Attempt 1 failed, retrying at ")
    assert record.message.endswith("ConnectionRefusedError: [Errno 111] Connection refused")
    assert record.error.startswith("ConnectionRefusedError:") and "Traceback" in record.error


def test_retries_stop_after_the_configured_number(settings, dummy, run_tasks):
    settings.WAGTAIL_TASKS_MAIL_RETRIES = 2
    through_tasks(settings, free_port())  # nothing listens: connection refused
    with run_tasks():
        plain_message().send()
    run_enqueued(dummy, run_tasks)
    assert len(dummy.results) == 3  # the first attempt and two retries
    record = TaskRecord.objects.get()
    assert record.status == TaskStatus.FAILED and record.attempts == 3
    assert record.error.startswith("ConnectionRefusedError:")
    assert QueuedEmail.objects.exists()  # kept for a retry by hand


def test_without_defer_a_temporary_failure_fails_visibly_and_a_retry_sends_it(settings, run_tasks):
    from wagtail_tasks import tracking

    port = free_port()
    through_tasks(settings, port)  # the in-process backend; nothing listens yet
    with run_tasks():
        plain_message().send()
    record = TaskRecord.objects.get()
    assert record.status == TaskStatus.FAILED and record.attempts == 1
    assert record.message.startswith(
        "Not retried automatically (backend 'default' cannot defer): ConnectionRefusedError"
    )
    with MailSink(port=port) as sink:
        with run_tasks():
            assert tracking.requeue(record)
        assert sink.count == 1
    record.refresh_from_db()
    assert record.status == TaskStatus.SUCCEEDED and not QueuedEmail.objects.exists()


def test_wagtail_password_reset_goes_through_the_task_backend(sink, client, run_tasks):
    UserFactory(username="editor", email="editor@example.com")
    with run_tasks():
        response = client.post(
            "/admin/password_reset/", {"email": "editor@example.com"}, follow=False
        )
    assert response.status_code == 302
    assert TaskRecord.objects.get().kind == KIND_EMAIL
    assert sink.recipients == ["editor@example.com"]
    assert "/admin/password_reset/confirm/" in sink.messages[0].get_body(("plain",)).get_content()


def test_a_workflow_moderation_notification_goes_through_the_task_backend(
    sink, article, run_tasks, settings
):
    from wagtail.models import GroupApprovalTask, Workflow, WorkflowTask

    settings.WAGTAILADMIN_NOTIFICATION_INCLUDE_SUPERUSERS = False
    moderators = Group.objects.create(name="Article moderators")
    moderator = UserFactory(username="mod", email="moderator@example.com")
    moderator.groups.add(moderators)
    approval = GroupApprovalTask.objects.create(name="Approve")
    approval.groups.add(moderators)
    workflow = Workflow.objects.create(name="Review")
    WorkflowTask.objects.create(workflow=workflow, task=approval, sort_order=0)
    editor = SuperuserFactory(username="writer", email="writer@example.com")
    article.save_revision(user=editor)
    with run_tasks():
        workflow.start(article, editor)
    assert sink.wait_for(1)
    assert sink.recipients == ["moderator@example.com"]
    assert "Big news" in sink.messages[0]["Subject"]
    assert TaskRecord.objects.filter(kind=KIND_EMAIL).count() == 1


def test_subscriber_notifications_send_directly_not_through_more_tasks(
    sink, section, article, run_tasks
):
    SubscriptionFactory.create_batch(3, page=section)
    connection = emails.open_connection()
    assert not isinstance(connection, TaskEmailBackend)
    assert type(connection).__module__ == "django.core.mail.backends.smtp"
    with run_tasks():
        publish(article)
    assert sink.count == 3
    assert not TaskRecord.objects.filter(kind=KIND_EMAIL).exists()
    assert not QueuedEmail.objects.exists()


def test_sending_connection_is_the_site_backend_when_it_is_not_the_task_backend(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert type(sending_connection()).__module__ == "django.core.mail.backends.locmem"


def test_an_inner_backend_that_is_the_task_backend_is_refused(settings):
    settings.WAGTAIL_TASKS_MAIL_BACKEND = TASK_BACKEND
    with pytest.raises(ValueError, match="is TaskEmailBackend again"):
        inner_connection()


def test_a_mailers_alias_names_the_inner_backend_on_django_6_1(settings, run_tasks):
    mailers = getattr(mail, "mailers", None)
    if mailers is None:  # Django 5.2: no MAILERS; the option says so clearly
        with pytest.raises(ImproperlyConfigured, match="needs Django 6.1 or later"):
            inner_connection("smtp")
        return
    with MailSink() as sink:
        settings.MAILERS = {
            "default": {"BACKEND": TASK_BACKEND, "OPTIONS": {"mailer": "smtp"}},
            "smtp": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": sink.port, "timeout": 5},
            },
        }
        with run_tasks():
            assert plain_message().send() == 1
        assert sink.count == 1
        assert not QueuedEmail.objects.exists()
        assert TaskRecord.objects.get().status == TaskStatus.SUCCEEDED
        # Our notifications, already in a task, get the "smtp" mailer itself.
        connection = sending_connection()
        assert (connection.alias, connection.port) == ("smtp", sink.port)
