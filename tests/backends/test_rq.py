"""The RQ backend (django-tasks-rq) for real: Redis, ``rqworker`` processes, an SMTP server."""

import signal
import subprocess
import time
from collections import Counter

import pytest

from tests.backends.rq import (
    RedisServer,
    empty_queues,
    kill_group,
    require_redis,
    rq_drain,
    rq_env,
    rq_worker_command,
)
from tests.conftest import publish
from tests.factories import SubscriptionFactory
from tests.test_recovery import SlowSink, later
from tests.worker import ROOT
from wagtail_tasks import tracking
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.notifications import tasks
from wagtail_tasks.notifications.models import Delivery, DeliveryStatus, Notification

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.worker,
]

RQ_ROUTES = {
    "notifications": {"backend": "rq", "queue": "wt-default"},
    "sending": {"backend": "rq", "queue": "wt-default"},
}


@pytest.fixture
def on_rq(settings):
    require_redis()
    empty_queues()
    settings.WAGTAIL_TASKS = RQ_ROUTES
    yield
    empty_queues()


def test_publish_reaches_every_subscriber_once_through_an_rq_worker(
    section, article, smtp_sink, on_rq
):
    subscribers = SubscriptionFactory.create_batch(50, page=section)
    publish(article)
    record = Notification.objects.get().record
    assert record.status == TaskStatus.QUEUED and record.backend_alias == "rq"
    assert record.backend_task_id and record.enqueued_at

    rq_drain(rq_env(smtp_sink.port, batch_size=20))

    assert sorted(smtp_sink.recipients) == sorted(s.email for s in subscribers)
    record.refresh_from_db()
    assert record.status == TaskStatus.SUCCEEDED, record.error
    assert record.percent == 100 and record.message == "50 sent, 0 failed, 0 skipped"
    batches = TaskRecord.objects.filter(parent=record)
    assert batches.count() == 3
    assert set(batches.values_list("backend_alias", "status")) == {("rq", TaskStatus.SUCCEEDED)}
    # The backend reports the job's result too (results expire after 500 s on RQ).
    from wagtail_tasks.task_api import task_backends

    assert task_backends["rq"].get_result(record.backend_task_id).status.name == "SUCCESSFUL"

    rq_drain(rq_env(smtp_sink.port))  # nothing left: nobody gets a second email
    assert smtp_sink.count == 50


def test_backend_down_fails_visibly_and_a_retry_delivers_once_it_is_back(
    section, article, smtp_sink, settings
):
    require_redis()
    settings.WAGTAIL_TASKS = {
        "notifications": {"backend": "rq-own", "queue": "wt-own"},
        "sending": {"backend": "rq-own", "queue": "wt-own"},
    }
    subscribers = SubscriptionFactory.create_batch(20, page=section)
    redis = RedisServer().start()
    try:
        redis.stop()  # the backend is down when the editor publishes

        publish(article)  # does not raise

        record = Notification.objects.get().record
        assert record.status == TaskStatus.FAILED
        assert record.error.startswith("Could not enqueue on backend 'rq-own': ")
        assert "ConnectionError" in record.error
        assert smtp_sink.count == 0

        redis.start()
        assert tracking.requeue(record)  # autocommit: enqueued at once
        record.refresh_from_db()
        assert record.status == TaskStatus.QUEUED and record.enqueued_at

        rq_drain(rq_env(smtp_sink.port, route="rq-own", queue="wt-own"), "wt-own")
    finally:
        redis.stop()

    assert sorted(smtp_sink.recipients) == sorted(s.email for s in subscribers)
    record.refresh_from_db()
    assert record.status == TaskStatus.SUCCEEDED, record.error


def test_an_rq_worker_killed_mid_batch_is_recovered_and_nobody_gets_two(section, article, on_rq):
    subscribers = SubscriptionFactory.create_batch(120, page=section)
    publish(article)
    with SlowSink(delay=0.02) as sink:
        env = rq_env(sink.port, batch_size=60)
        worker = subprocess.Popen(
            rq_worker_command(burst=False, simple=True),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            assert sink.wait_for(25, timeout=60), "the worker did not start sending"
        finally:
            kill_group(worker, signal.SIGKILL)
        killed_at = sink.count
        time.sleep(0.5)
        assert sink.count == killed_at < 120

        dead = TaskRecord.objects.get(kind=tasks.KIND_SEND, status=TaskStatus.RUNNING)
        recovery = tracking.recover_stuck(now=later())
        assert dead.pk in recovery.requeued

        rq_drain(env)

    counts = Counter(address.lower() for address in sink.recipients)
    assert [address for address, n in counts.items() if n > 1] == []
    unknown = set(
        Delivery.objects.filter(status=DeliveryStatus.FAILED).values_list(
            "subscription__email", flat=True
        )
    )
    everybody = {s.email for s in subscribers}
    assert set(counts) <= everybody
    assert everybody - unknown <= set(counts)
    assert len(unknown) <= 10  # at most one claim (WAGTAIL_TASKS_CLAIM_SIZE) was in doubt
    record = Notification.objects.get().record
    assert record.status == TaskStatus.SUCCEEDED, record.error
    assert not TaskRecord.objects.unfinished().exists()
