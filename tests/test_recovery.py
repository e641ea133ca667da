"""Work whose worker died: found by its missing heartbeat, failed visibly, resumed once.

The unit tests stage a dead worker's leftovers on the dummy backend; the last test kills a real
db_worker with SIGKILL in the middle of a send batch.
"""

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from sandbox.mailsink import MailSink
from tests.conftest import publish
from tests.factories import SubscriptionFactory
from tests.testapp.tasks import count_to
from tests.worker import ROOT, drain, worker_command, worker_env
from wagtail_tasks import tracking
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.notifications import tasks
from wagtail_tasks.notifications.models import Delivery, DeliveryStatus, Notification

STUCK_AFTER = 300


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def later(seconds=STUCK_AFTER + 1):
    return timezone.now() + timedelta(seconds=seconds)


def running(**fields):
    """A row as a worker leaves it when it dies: RUNNING, heartbeat from when it last reported."""
    with_defaults = {"heartbeat_at": timezone.now(), "started_at": timezone.now(), **fields}
    return TaskRecord.objects.create(
        kind="test",
        task_path=count_to.module_path,
        group="notifications",
        args=[2],
        status=TaskStatus.RUNNING,
        attempts=1,
        **with_defaults,
    )


@pytest.mark.django_db
def test_only_running_rows_silent_for_too_long_and_waiting_for_nothing_are_stuck():
    quiet = running()
    parent_waiting = running()
    TaskRecord.objects.create(kind="child", parent=parent_waiting, status=TaskStatus.QUEUED)
    parent_done = running()
    TaskRecord.objects.create(kind="child", parent=parent_done, status=TaskStatus.SUCCEEDED)
    never_beat = running(heartbeat_at=None)
    queued = TaskRecord.objects.create(kind="test", status=TaskStatus.QUEUED)
    failed = TaskRecord.objects.create(kind="test", status=TaskStatus.FAILED)

    assert not TaskRecord.objects.stuck(timezone.now() - timedelta(seconds=STUCK_AFTER)).exists()
    stuck = set(TaskRecord.objects.stuck(later() - timedelta(seconds=STUCK_AFTER)))
    assert stuck == {quiet, parent_done, never_beat}
    assert not stuck & {parent_waiting, queued, failed}


@pytest.mark.django_db
def test_stuck_work_is_failed_with_the_reason_and_run_again(run_tasks):
    record = running()
    with run_tasks():
        recovery = tracking.recover_stuck(now=later())
    assert (recovery.requeued, recovery.failed) == ([record.pk], [])
    record.refresh_from_db()
    # The second run (in-process here) finished the work.
    assert (record.status, record.attempts, record.progress_done) == (TaskStatus.SUCCEEDED, 2, 2)


@pytest.mark.django_db
def test_work_whose_worker_died_too_often_stays_failed_for_a_person(run_tasks, settings):
    settings.WAGTAIL_TASKS_MAX_CRASHES = 1
    record = running()
    with run_tasks() as callbacks:
        recovery = tracking.recover_stuck(now=later())
    assert (recovery.requeued, recovery.failed, callbacks) == ([], [record.pk], [])
    record.refresh_from_db()
    assert record.status == TaskStatus.FAILED
    assert record.error.startswith("The worker stopped responding: no heartbeat since ")
    assert record.finished_at is not None


@pytest.mark.django_db
def test_fresh_heartbeats_are_left_alone(run_tasks):
    record = running()
    with run_tasks():
        recovery = tracking.recover_stuck()
    assert (recovery.requeued, recovery.failed) == ([], [])
    assert TaskRecord.objects.get(pk=record.pk).status == TaskStatus.RUNNING


@pytest.mark.django_db
def test_the_stuck_after_setting_is_honoured(run_tasks, settings):
    settings.WAGTAIL_TASKS_STUCK_AFTER = 5
    record = running(heartbeat_at=timezone.now() - timedelta(seconds=6))
    with run_tasks():
        assert tracking.recover_stuck().requeued == [record.pk]


@pytest.mark.django_db
def test_a_dead_send_batch_never_resends_what_it_held_and_sends_the_rest(
    section, article, outbox, run_tasks, settings
):
    settings.WAGTAIL_TASKS = {"sending": {"backend": "dummy"}}
    subscribers = SubscriptionFactory.create_batch(25, page=section)
    with run_tasks():
        publish(article)
    batch = TaskRecord.objects.get(kind=tasks.KIND_SEND)
    # The dead worker had claimed ten and sent four of them when it was killed.
    held = list(Delivery.objects.order_by("pk")[:10])
    Delivery.objects.filter(pk__in=[d.pk for d in held]).update(status=DeliveryStatus.SENDING)
    Delivery.objects.filter(pk__in=[d.pk for d in held[:4]]).update(status=DeliveryStatus.SENT)
    TaskRecord.objects.filter(pk=batch.pk).update(
        status=TaskStatus.RUNNING, attempts=1, heartbeat_at=timezone.now()
    )

    settings.WAGTAIL_TASKS = {}  # the new run goes to the in-process backend
    with run_tasks():
        assert tracking.recover_stuck(now=later()).requeued == [batch.pk]

    held_unknown = {d.subscription.email for d in held[4:]}
    assert len(outbox) == 15
    assert {m.to[0] for m in outbox}.isdisjoint(
        held_unknown | {d.subscription.email for d in held[:4]}
    )
    unknown = Delivery.objects.filter(status=DeliveryStatus.FAILED)
    assert set(unknown.values_list("subscription__email", flat=True)) == held_unknown
    assert set(unknown.values_list("reason", flat=True)) == {tasks.UNKNOWN_OUTCOME}
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 4 + 15
    record = Notification.objects.get().record
    assert record.status == TaskStatus.SUCCEEDED
    assert record.message == "19 sent, 6 failed, 0 skipped"
    batch.refresh_from_db()
    assert (batch.status, batch.attempts) == (TaskStatus.SUCCEEDED, 2)
    assert len(subscribers) == 25


@pytest.mark.django_db
def test_the_command_reports_what_it_did(capsys, run_tasks, settings):
    settings.WAGTAIL_TASKS_STUCK_AFTER = 0
    running(heartbeat_at=timezone.now() - timedelta(seconds=1))
    with run_tasks():
        call_command("wagtail_tasks_recover")
    assert "1 stuck task(s) enqueued again, 0 left failed" in capsys.readouterr().out


class SlowSink(MailSink):
    """A mail server that takes ``delay`` seconds to accept each message."""

    def __init__(self, delay: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("claim_size", [10, 1])
def test_a_worker_killed_mid_batch_is_recovered_and_nobody_gets_two(
    section, article, settings, claim_size
):
    settings.WAGTAIL_TASKS = {
        "notifications": {"backend": "database"},
        "sending": {"backend": "database"},
    }
    subscribers = SubscriptionFactory.create_batch(120, page=section)
    publish(article)
    with SlowSink(delay=0.02) as sink:
        env = worker_env(sink.port, batch_size=60)
        env["WAGTAIL_TASKS_TEST_CLAIM_SIZE"] = str(claim_size)
        worker = subprocess.Popen(
            worker_command(), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            assert sink.wait_for(25, timeout=60), "the worker did not start sending"
        finally:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
        killed_at = sink.count
        time.sleep(0.5)  # nothing more arrives from a dead worker
        assert sink.count == killed_at < 120

        # The dead batch is RUNNING with a heartbeat that no longer moves.
        dead = TaskRecord.objects.get(kind=tasks.KIND_SEND, status=TaskStatus.RUNNING)
        recovery = tracking.recover_stuck(now=later())
        assert recovery.requeued == [dead.pk]

        drain(env)

    counts = Counter(address.lower() for address in sink.recipients)
    duplicates = [address for address, n in counts.items() if n > 1]
    unknown = set(
        Delivery.objects.filter(status=DeliveryStatus.FAILED).values_list(
            "subscription__email", flat=True
        )
    )
    assert duplicates == []
    # Everybody got exactly one email, except the few the dead worker held: those may or may
    # not have reached the server before it died, are never sent again, and fail visibly.
    everybody = {s.email for s in subscribers}
    assert set(counts) <= everybody
    assert everybody - unknown <= set(counts)
    assert 0 < len(unknown) <= claim_size
    record = Notification.objects.get().record
    assert record.status == TaskStatus.SUCCEEDED, record.error
    assert record.message == f"{120 - len(unknown)} sent, {len(unknown)} failed, 0 skipped"
    assert not TaskRecord.objects.unfinished().exists()


@pytest.mark.django_db
def test_a_fan_out_that_died_half_way_is_resumed_without_duplicate_batches(
    section, article, outbox, run_tasks, settings
):
    settings.WAGTAIL_TASKS = {
        "notifications": {"backend": "dummy"},
        "sending": {"backend": "dummy"},
    }
    settings.WAGTAIL_TASKS_FANOUT_PAGE_SIZE = 10
    settings.WAGTAIL_TASKS_SEND_BATCH_SIZE = 10
    SubscriptionFactory.create_batch(30, page=section)
    with run_tasks():
        publish(article)
    notification = Notification.objects.get()
    # The worker ran the first keyset page of the fan-out, then died.
    TaskRecord.objects.filter(pk=notification.record_id).update(
        status=TaskStatus.RUNNING, attempts=1, heartbeat_at=timezone.now()
    )
    first_page = list(tasks.Subscription.objects.order_by("pk").values_list("pk", "email")[:10])
    tasks.create_deliveries(notification, first_page)
    tasks.enqueue_send_batches(notification, notification.record)
    # ... and another worker sent that first batch meanwhile.
    Delivery.objects.update(status=DeliveryStatus.SENT)
    TaskRecord.objects.filter(kind=tasks.KIND_SEND).update(status=TaskStatus.SUCCEEDED)

    settings.WAGTAIL_TASKS = {"sending": {"backend": "dummy"}}  # fan-out in-process now
    with run_tasks():
        assert tracking.recover_stuck(now=later()).requeued == [notification.record_id]
    assert Delivery.objects.count() == 30
    batches = TaskRecord.objects.filter(kind=tasks.KIND_SEND)
    assert batches.count() == 3
    assert not Delivery.objects.filter(batch__isnull=True).exists()
    record = TaskRecord.objects.get(pk=notification.record_id)
    assert (record.status, record.attempts) == (TaskStatus.RUNNING, 2)  # waiting for 2 batches
    assert record.progress_done == 10 and record.progress_total == 30
    assert not TaskRecord.objects.stuck(later() - timedelta(seconds=STUCK_AFTER)).exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_three_workers_running_every_batch_twice_send_each_email_once(
    section, article, smtp_sink, settings
):
    # A backend that redelivers: every send batch is enqueued a second time, so that two
    # workers run the same batch at the same moment. The claims keep them apart.
    settings.WAGTAIL_TASKS = {
        "notifications": {"backend": "database"},
        "sending": {"backend": "database"},
    }
    settings.WAGTAIL_TASKS_SEND_BATCH_SIZE = 50
    subscribers = SubscriptionFactory.create_batch(600, page=section)
    publish(article)
    env = worker_env(smtp_sink.port, batch_size=50)
    # The fan-out runs here first; the database backend still holds its task too, so the
    # workers run it a second time, next to the batches: it must add nothing.
    notification = Notification.objects.get()
    tasks.fan_out_notification.call(notification.record_id, notification.pk)
    batches = list(TaskRecord.objects.filter(kind=tasks.KIND_SEND))
    assert len(batches) == 12
    for batch in batches:
        tasks.send_notification_batch.using(backend="database").enqueue(batch.pk, *batch.args)

    drain(env, workers=3)

    counts = Counter(address.lower() for address in smtp_sink.recipients)
    assert [a for a, n in counts.items() if n > 1] == []
    assert set(counts) == {s.email for s in subscribers}
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 600
    assert Notification.objects.get().record.status == TaskStatus.SUCCEEDED


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_mail_server_down_for_a_while_gets_every_email_once_it_is_back(
    section, article, settings
):
    settings.WAGTAIL_TASKS = {
        "notifications": {"backend": "database"},
        "sending": {"backend": "database"},
    }
    subscribers = SubscriptionFactory.create_batch(150, page=section)
    publish(article)
    sink = MailSink()  # not started: connections to its port are refused
    env = worker_env(sink.port, batch_size=50)
    env["WAGTAIL_TASKS_TEST_RETRY_DELAY"] = "0.5"  # then 1, 2, 4 ... seconds
    worker = subprocess.Popen(
        worker_command(), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while not TaskRecord.objects.filter(kind=tasks.KIND_SEND, attempts__gte=2).exists():
            assert time.monotonic() < deadline, "no batch was retried"
            time.sleep(0.1)
        waiting = TaskRecord.objects.filter(kind=tasks.KIND_SEND, status=TaskStatus.QUEUED)
        assert "The mail server is unavailable" in waiting.first().message
        with sink:  # the server is back
            deadline = time.monotonic() + 60
            while TaskRecord.objects.unfinished().exists():
                assert time.monotonic() < deadline, "the work did not finish"
                time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(10)
    assert sorted(sink.recipients) == sorted(s.email for s in subscribers)
    record = Notification.objects.get().record
    assert (record.status, record.message) == (
        TaskStatus.SUCCEEDED,
        "150 sent, 0 failed, 0 skipped",
    )
    assert (
        max(TaskRecord.objects.filter(kind=tasks.KIND_SEND).values_list("attempts", flat=True)) >= 2
    )


def queued_on(settings, alias, run_tasks):
    settings.WAGTAIL_TASKS = {"notifications": {"backend": alias}}
    with run_tasks():
        record = tracking.enqueue(count_to, 2, kind="test", group="notifications")
    record.refresh_from_db()
    assert record.status == TaskStatus.QUEUED and record.enqueued_at is not None
    return record


@pytest.mark.django_db
def test_a_row_that_never_reached_its_backend_is_sent_again(run_tasks):
    # The process that committed it died before its on-commit enqueue ran.
    record = TaskRecord.objects.create(
        kind="test", task_path=count_to.module_path, group="notifications", args=[2]
    )
    assert tracking.recover_stuck().resent == []  # young: its enqueue may still be coming
    recovery = tracking.recover_stuck(now=later())
    assert recovery.resent == [record.pk]
    record.refresh_from_db()
    assert (record.status, record.progress_done) == (TaskStatus.SUCCEEDED, 2)


@pytest.mark.django_db
def test_a_job_its_worker_took_and_died_with_is_sent_again(run_tasks, settings):
    from django_tasks_db.models import DBTaskResult

    record = queued_on(settings, "database", run_tasks)
    # A worker claimed the job, then died before the task body marked the row RUNNING.
    DBTaskResult.objects.filter(id=record.backend_task_id).update(status="RUNNING")
    recovery = tracking.recover_stuck(now=later())
    assert recovery.resent == [record.pk]
    resent = TaskRecord.objects.get(pk=record.pk)
    assert resent.backend_task_id != record.backend_task_id
    assert DBTaskResult.objects.get(id=resent.backend_task_id).status == "READY"


@pytest.mark.django_db
def test_a_job_still_waiting_in_a_long_queue_is_left_alone(run_tasks, settings):
    record = queued_on(settings, "database", run_tasks)
    assert tracking.recover_stuck(now=later()).resent == []
    assert TaskRecord.objects.get(pk=record.pk).backend_task_id == record.backend_task_id


@pytest.mark.django_db
def test_a_backend_that_cannot_report_results_is_trusted(run_tasks, settings):
    record = queued_on(settings, "dummy", run_tasks)
    assert tracking.recover_stuck(now=later()).resent == []
    assert TaskRecord.objects.get(pk=record.pk).status == TaskStatus.QUEUED


@pytest.mark.django_db
def test_planned_retries_do_not_use_up_the_recoveries(run_tasks, settings):
    """A batch retried three times while the mail server was down, then killed, is still
    recovered: only worker deaths count against WAGTAIL_TASKS_MAX_CRASHES."""
    settings.WAGTAIL_TASKS_MAX_CRASHES = 2
    record = running()
    TaskRecord.objects.filter(pk=record.pk).update(attempts=4)
    with run_tasks():
        first = tracking.recover_stuck(now=later())
    record.refresh_from_db()
    assert (first.requeued, record.crashes) == ([record.pk], 1)
    # It dies again: the second death is the last one allowed.
    TaskRecord.objects.filter(pk=record.pk).update(
        status=TaskStatus.RUNNING, heartbeat_at=timezone.now()
    )
    with run_tasks() as callbacks:
        second = tracking.recover_stuck(now=later())
    record.refresh_from_db()
    assert (second.requeued, second.failed, callbacks) == ([], [record.pk], [])
    assert (record.status, record.crashes) == (TaskStatus.FAILED, 2)
    assert "worker death 2" in record.error
