"""Fan-out and sending: bad input gets a clear outcome and nothing is lost or sent twice."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from sandbox.mailsink import MailSink, free_port
from tests.conftest import publish
from tests.factories import SubscriptionFactory
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.notifications import tasks
from wagtail_tasks.notifications.models import Delivery, DeliveryStatus, Notification
from wagtail_tasks.task_api import task_backends

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def smtp_settings(port):
    return override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
        EMAIL_TIMEOUT=5,
    )


def use_template_dir(settings, name):
    """Templates in tests/<name> take precedence (a new list: the setting_changed reset runs)."""
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [settings.BASE_DIR / name]}]


def deliveries(**filters):
    return dict(Delivery.objects.filter(**filters).values_list("subscription__email", "status"))


def test_message_has_templates_unsubscribe_link_and_list_headers(
    article, subscribers, outbox, run_tasks
):
    with run_tasks():
        publish(article)
    message = outbox[0]
    assert message.subject == "[Test site] New: Big news"
    assert message.from_email == "news@example.com"
    unsubscribe = message.extra_headers["List-Unsubscribe"]
    assert unsubscribe.startswith("<http://testserver/subscriptions/unsubscribe/")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = unsubscribe.strip("<>")
    assert url in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and url in html
    assert "http://testserver/news/big-news/" in message.body
    # Each recipient gets a link of their own.
    links = {m.extra_headers["List-Unsubscribe"] for m in outbox}
    assert len(links) == len(subscribers)


def test_templates_can_be_overridden_per_site(article, subscribers, outbox, run_tasks, settings):
    use_template_dir(settings, "templates_override")
    with run_tasks():
        publish(article)
    assert outbox[0].subject == "Fresh from the test site: Big news"


def test_title_with_newlines_cannot_inject_headers(section, outbox, run_tasks):
    from tests.factories import ArticlePageFactory

    SubscriptionFactory(page=section, email="reader@example.com")
    page = ArticlePageFactory(
        parent=section, title="Hello\r\nBcc: victim@example.com\nX-Evil: 1", slug="hello"
    )
    with run_tasks():
        publish(page)
    [message] = outbox
    assert message.recipients() == ["reader@example.com"]
    assert "\n" not in message.subject and "\r" not in message.subject
    raw = message.message().as_string()
    headers = raw.split("\n\n", 1)[0]
    assert "\nBcc:" not in headers and "\nX-Evil:" not in headers


def test_invalid_and_blank_addresses_are_skipped_with_a_reason(section, article, outbox, run_tasks):
    good = SubscriptionFactory(page=section, email="good@example.com")
    SubscriptionFactory(page=section, email="not an address")
    SubscriptionFactory(page=section, email="")
    SubscriptionFactory(page=section, email="   ")
    with run_tasks():
        publish(article)
    assert [m.to for m in outbox] == [[good.email]]
    skipped = Delivery.objects.filter(status=DeliveryStatus.SKIPPED).order_by("pk")
    assert [d.reason for d in skipped] == [
        "Invalid email address: 'not an address'.",
        "No email address.",
        "No email address.",
    ]
    record = Notification.objects.get().record
    assert record.status == TaskStatus.SUCCEEDED
    assert record.message == "1 sent, 0 failed, 3 skipped"


def test_page_deleted_before_the_worker_runs_cancels_cleanly(
    article, subscribers, outbox, run_tasks
):
    with run_tasks() as callbacks:
        publish(article)
    # The worker has not run yet; take the fan-out out and delete the page first.
    callbacks.clear()
    notification = Notification.objects.get()
    record = notification.record
    TaskRecord.objects.filter(pk=record.pk).update(status=TaskStatus.QUEUED)
    Delivery.objects.all().delete()
    article.delete()
    tasks.fan_out_notification.call(record.pk, notification.pk)
    record.refresh_from_db()
    assert record.status == TaskStatus.CANCELLED
    assert record.message == "The page was deleted before its subscribers were notified."
    assert not Delivery.objects.exists()


def test_page_deleted_between_fan_out_and_sending_skips_the_rest(
    section, article, subscribers, outbox, run_tasks, settings
):
    settings.WAGTAIL_TASKS = {"sending": {"backend": "dummy"}}
    with run_tasks():
        publish(article)  # fan-out runs; the send batch waits on the dummy backend
    batch = TaskRecord.objects.get(kind=tasks.KIND_SEND)
    assert batch.status == TaskStatus.QUEUED
    article.delete()
    tasks.send_notification_batch.call(batch.pk, Notification.objects.get().pk)
    batch.refresh_from_db()
    assert batch.status == TaskStatus.CANCELLED
    assert outbox == []
    assert set(Delivery.objects.values_list("status", "reason")) == {
        (DeliveryStatus.SKIPPED, "The page was deleted before its subscribers were notified.")
    }
    assert Notification.objects.get().record.status == TaskStatus.SUCCEEDED


def test_unpublished_before_the_worker_runs_sends_nothing(
    article, subscribers, outbox, settings, run_tasks
):
    settings.WAGTAIL_TASKS = {"notifications": {"backend": "dummy"}}
    with run_tasks():
        publish(article)
    article.unpublish()
    notification = Notification.objects.get()
    tasks.fan_out_notification.call(notification.record_id, notification.pk)
    notification.record.refresh_from_db()
    assert notification.record.status == TaskStatus.CANCELLED
    assert notification.record.message == "The page is no longer live; no emails were sent."
    assert outbox == []


def test_broken_template_fails_the_notification_with_the_error_visible(
    article, subscribers, outbox, run_tasks, settings
):
    use_template_dir(settings, "templates_broken")
    with run_tasks():
        publish(article)  # the publish itself succeeds
    article.refresh_from_db()
    assert article.live
    record = Notification.objects.get().record
    assert record.status == TaskStatus.FAILED
    assert record.error.startswith("TemplateSyntaxError:")
    assert "Invalid block tag on line 1: 'no_such_tag'" in record.error
    assert outbox == []
    assert not Delivery.objects.exists()


def test_unsubscribed_between_fan_out_and_sending_is_skipped(
    article, subscribers, outbox, settings, run_tasks, client
):
    settings.WAGTAIL_TASKS = {"sending": {"backend": "dummy"}}
    with run_tasks():
        publish(article)
    leaving = subscribers[0]
    leaving.status = "unsubscribed"
    leaving.save()
    batch = TaskRecord.objects.get(kind=tasks.KIND_SEND)
    tasks.send_notification_batch.call(batch.pk, Notification.objects.get().pk)
    assert sorted(m.to[0] for m in outbox) == sorted(s.email for s in subscribers[1:])
    assert Delivery.objects.get(subscription=leaving).reason == (
        "Unsubscribed before the email was sent."
    )


def test_running_every_task_twice_sends_nothing_more(article, subscribers, outbox, run_tasks):
    with run_tasks():
        publish(article)
    assert len(outbox) == 3
    notification = Notification.objects.get()
    batch = TaskRecord.objects.get(kind=tasks.KIND_SEND)
    # A backend redelivers both tasks, as after a crash: reopen their rows and run again.
    TaskRecord.objects.update(status=TaskStatus.RUNNING)
    Notification.objects.update(fanned_out_at=None)
    with run_tasks():
        tasks.fan_out_notification.call(notification.record_id, notification.pk)
        tasks.send_notification_batch.call(batch.pk, notification.pk)
    assert len(outbox) == 3
    assert Delivery.objects.count() == 3
    assert TaskRecord.objects.filter(kind=tasks.KIND_SEND).count() == 1
    assert notification.record.__class__.objects.get(pk=notification.record_id).status == (
        TaskStatus.SUCCEEDED
    )


CLAIM_SIZE = 10  # the default WAGTAIL_TASKS_CLAIM_SIZE


@pytest.mark.parametrize("returning", [True, False], ids=["update-returning", "update-per-row"])
def test_deliveries_another_run_claimed_are_never_sent_again(
    section, article, outbox, run_tasks, settings, monkeypatch, returning
):
    # Both ways of claiming: UPDATE ... RETURNING (PostgreSQL, SQLite) and one UPDATE per row.
    monkeypatch.setattr(
        tasks.DeliveryLedger, "__init__", force_returning(tasks.DeliveryLedger.__init__, returning)
    )
    settings.WAGTAIL_TASKS = {"sending": {"backend": "dummy"}}
    SubscriptionFactory.create_batch(CLAIM_SIZE + 5, page=section)
    with run_tasks():
        publish(article)
    batch = TaskRecord.objects.get(kind=tasks.KIND_SEND)
    # A worker that died mid-batch held these: they may have reached the mail server.
    held = list(Delivery.objects.order_by("pk").values_list("pk", flat=True)[3:6])
    Delivery.objects.filter(pk__in=held).update(status=DeliveryStatus.SENDING)
    tasks.send_notification_batch.call(batch.pk, Notification.objects.get().pk)
    assert len(outbox) == CLAIM_SIZE + 5 - 3
    assert {m.to[0] for m in outbox}.isdisjoint(
        Delivery.objects.filter(pk__in=held).values_list("subscription__email", flat=True)
    )
    assert Delivery.objects.filter(status=DeliveryStatus.SENDING).count() == 3
    assert Delivery.objects.filter(status=DeliveryStatus.SENT, sent_at__isnull=False).count() == (
        CLAIM_SIZE + 2
    )
    assert set(Delivery.objects.exclude(pk__in=held).values_list("attempts", flat=True)) == {1}
    # The notification is not reported done while deliveries are unaccounted for.
    record = Notification.objects.get().record
    assert record.status == TaskStatus.RUNNING
    assert record.progress_done == CLAIM_SIZE + 2


def force_returning(init, returning):
    def patched(self):
        init(self)
        self.returning = returning

    return patched


def test_a_finished_task_delivered_again_does_not_run(article, subscribers, outbox, run_tasks):
    with run_tasks():
        publish(article)
    notification = Notification.objects.get()
    with run_tasks():
        tasks.fan_out_notification.call(notification.record_id, notification.pk)
    assert len(outbox) == 3
    assert TaskRecord.objects.get(pk=notification.record_id).attempts == 1


def test_batches_have_the_configured_size(section, article, outbox, run_tasks, settings):
    settings.WAGTAIL_TASKS_SEND_BATCH_SIZE = 4
    settings.WAGTAIL_TASKS_FANOUT_PAGE_SIZE = 3
    SubscriptionFactory.create_batch(10, page=section)
    with run_tasks():
        publish(article)
    batches = TaskRecord.objects.filter(kind=tasks.KIND_SEND).order_by("pk")
    # Pages of 3 subscriptions: each page's deliveries are batched as they are created.
    assert [b.progress_total for b in batches] == [3, 3, 3, 1]
    assert all(b.status == TaskStatus.SUCCEEDED for b in batches)
    assert all(b.parent_id == Notification.objects.get().record_id for b in batches)
    assert len(outbox) == 10


def test_smtp_refusing_one_recipient_fails_that_delivery_only(section, article, run_tasks):
    SubscriptionFactory(page=section, email="ok1@example.com")
    SubscriptionFactory(page=section, email="nobody@example.com")
    SubscriptionFactory(page=section, email="ok2@example.com")
    with MailSink(refuse={"nobody@example.com"}) as sink, smtp_settings(sink.port):
        with run_tasks():
            publish(article)
        assert sorted(sink.recipients) == ["ok1@example.com", "ok2@example.com"]
    assert deliveries() == {
        "ok1@example.com": DeliveryStatus.SENT,
        "nobody@example.com": DeliveryStatus.FAILED,
        "ok2@example.com": DeliveryStatus.SENT,
    }
    failed = Delivery.objects.get(status=DeliveryStatus.FAILED)
    assert failed.reason == "Recipient refused: 550 5.1.1 Mailbox unavailable"
    record = Notification.objects.get().record
    assert record.status == TaskStatus.SUCCEEDED
    assert record.message == "2 sent, 1 failed, 0 skipped"


def test_smtp_down_fails_visibly_and_a_retry_sends_everything_once(article, subscribers, run_tasks):
    port = free_port()  # nothing listens here yet
    with smtp_settings(port):
        with run_tasks():
            publish(article)
        batch = TaskRecord.objects.get(kind=tasks.KIND_SEND)
        record = Notification.objects.get().record
        # The in-process backend cannot defer a retry: the batch fails, visibly, at once.
        assert batch.status == TaskStatus.FAILED
        assert batch.error.startswith("The mail server is unavailable: ConnectionRefusedError")
        assert batch.message.startswith("Not retried automatically (backend 'default' cannot")
        assert record.status == TaskStatus.FAILED
        assert record.error == batch.error
        assert record.message == "0 sent, 0 failed, 0 skipped, 3 not sent"
        assert set(deliveries().values()) == {DeliveryStatus.PENDING}

        # The server comes back; the batch is retried (issue #3 adds the button for this).
        with MailSink(port=port) as sink:
            TaskRecord.objects.filter(pk__in=[batch.pk, record.pk]).update(
                status=TaskStatus.RUNNING
            )
            tasks.send_notification_batch.call(batch.pk, Notification.objects.get().pk)
            assert sorted(sink.recipients) == sorted(s.email for s in subscribers)
    record.refresh_from_db()
    assert record.status == TaskStatus.SUCCEEDED
    assert set(deliveries().values()) == {DeliveryStatus.SENT}


def test_email_goes_to_a_real_smtp_server_with_headers(article, subscribers, run_tasks):
    with MailSink() as sink, smtp_settings(sink.port):
        with run_tasks():
            publish(article)
        assert sink.count == 3
        message = sink.messages[0]
    assert message["Subject"] == "[Test site] New: Big news"
    assert (
        message["List-Unsubscribe"]
        .strip()
        .startswith("<http://testserver/subscriptions/unsubscribe/")
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_body(("html",)).get_content().count("Big news") >= 1
    assert message.get_body(("plain",)).get_content().count("http://testserver/news/big-news/") == 1


def test_unsubscribe_url_in_header_is_signed_for_that_subscriber(
    article, subscribers, outbox, run_tasks, client
):
    with run_tasks():
        publish(article)
    url = outbox[0].extra_headers["List-Unsubscribe"].strip("<>")
    path = url.removeprefix("http://testserver")
    assert path.startswith(reverse("wagtail_tasks:unsubscribe", args=["x"])[:-2])
    response = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert [s.status for s in type(subscribers[0]).objects.order_by("pk")].count(
        "unsubscribed"
    ) == 1


def test_a_private_page_notifies_nobody(section, article, subscribers, outbox, run_tasks):
    from wagtail.models import PageViewRestriction

    PageViewRestriction.objects.create(page=section, restriction_type=PageViewRestriction.LOGIN)
    with run_tasks():
        publish(article)
    assert outbox == []
    record = Notification.objects.get().record
    assert record.status == TaskStatus.CANCELLED
    assert record.message == "The page is private (it has view restrictions); no emails were sent."


class MoodySink(MailSink):
    """A mail server that answers 4xx: to RCPT for ``greylist`` addresses, to DATA while
    ``busy``, until told otherwise."""

    def __init__(self, greylist=(), busy=False, **kwargs):
        super().__init__(**kwargs)
        self.greylist = set(greylist)
        self.busy = busy

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        if address in self.greylist:
            return "450 4.2.0 Greylisted, try again later"
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.busy:
            return "451 4.3.0 Busy, try again later"
        return await super().handle_DATA(server, session, envelope)


def retried(batch_pk):
    record = TaskRecord.objects.get(pk=batch_pk)
    return record.status, record.message


@pytest.mark.parametrize(
    "outage",
    ["refused", "busy"],
    ids=["connection-refused", "4xx-at-data"],
)
def test_an_unavailable_mail_server_defers_the_batch_with_backoff(
    article, subscribers, run_tasks, settings, outage
):
    settings.WAGTAIL_TASKS = {"sending": {"backend": "dummy"}}
    settings.WAGTAIL_TASKS_SEND_RETRIES = 2
    settings.WAGTAIL_TASKS_SEND_RETRY_DELAY = 10
    backend = task_backends["dummy"]
    backend.clear()
    port = free_port()
    sink = MoodySink(port=port, busy=True) if outage == "busy" else None
    with smtp_settings(port):
        if sink:
            sink.start()
        with run_tasks():
            publish(article)
        batch = TaskRecord.objects.get(kind=tasks.KIND_SEND)
        notification = Notification.objects.get()
        before = timezone.now()
        for attempt, delay in enumerate((10, 20), start=1):
            with run_tasks():
                tasks.send_notification_batch.call(batch.pk, notification.pk)
            status, message = retried(batch.pk)
            assert status == TaskStatus.QUEUED
            assert message.startswith(f"Attempt {attempt} failed, retrying at ")
            assert "The mail server is unavailable" in message
            deferred = backend.results[-1]
            assert list(deferred.args) == [batch.pk, notification.pk]
            assert deferred.task.run_after >= before + timedelta(seconds=delay)
        assert set(deliveries().values()) == {DeliveryStatus.PENDING}
        # The delays are used up: the third failure is final, and visible.
        with run_tasks(), pytest.raises(RuntimeError, match="gave up after 3 attempts"):
            tasks.send_notification_batch.call(batch.pk, notification.pk)
        batch.refresh_from_db()
        assert batch.status == TaskStatus.FAILED
        assert "gave up after 3 attempts" in batch.error
        assert Notification.objects.get().record.status == TaskStatus.FAILED
        if sink:
            sink.stop()
    assert set(deliveries().values()) == {DeliveryStatus.PENDING}


def test_a_greylisted_recipient_waits_and_the_rest_are_sent(article, section, run_tasks, settings):
    settings.WAGTAIL_TASKS = {"sending": {"backend": "dummy"}}
    subscribers = SubscriptionFactory.create_batch(4, page=section)
    grey = subscribers[1].email
    with MoodySink(greylist={grey}) as sink, smtp_settings(sink.port):
        with run_tasks():
            publish(article)
        batch = TaskRecord.objects.get(kind=tasks.KIND_SEND)
        notification = Notification.objects.get()
        with run_tasks():
            tasks.send_notification_batch.call(batch.pk, notification.pk)
        assert sorted(sink.recipients) == sorted(s.email for s in subscribers if s.email != grey)
        assert retried(batch.pk)[0] == TaskStatus.QUEUED
        waiting = Delivery.objects.get(subscription=subscribers[1])
        assert waiting.status == DeliveryStatus.PENDING
        assert waiting.reason.startswith("Refused for now: 450")
        # Greylisting ends; the batch's next run sends only that one.
        sink.greylist.clear()
        with run_tasks():
            tasks.send_notification_batch.call(batch.pk, notification.pk)
        assert sorted(sink.recipients) == sorted(s.email for s in subscribers)
    assert retried(batch.pk)[0] == TaskStatus.SUCCEEDED
    assert Notification.objects.get().record.status == TaskStatus.SUCCEEDED
