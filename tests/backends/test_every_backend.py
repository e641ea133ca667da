"""One scenario on every backend: publish an article with subscribers, work the tasks the way
that backend is worked, and every subscriber gets exactly one email through a real SMTP server.
"""

from collections import Counter

import pytest

from tests.backends.rq import empty_queues, require_redis, rq_drain, rq_env
from tests.conftest import publish
from tests.factories import SubscriptionFactory
from tests.worker import drain, worker_env
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.notifications.models import Notification
from wagtail_tasks.testing import clear_enqueued, enqueued, run_enqueued

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.worker,
]

SUBSCRIBERS = 30
BATCH_SIZE = 12


def in_process(smtp_port):
    """Nothing to do: the immediate backend ran everything inside publish()."""


def dummy(smtp_port):
    assert [t.kind for t in enqueued(pending=True)] == ["notification"]
    run_enqueued()


def database(smtp_port):
    drain(worker_env(smtp_port, batch_size=BATCH_SIZE))


def rq(smtp_port):
    rq_drain(rq_env(smtp_port, batch_size=BATCH_SIZE))


BACKENDS = {
    # alias: (queue, how its tasks get worked)
    "default": ("default", in_process),
    "dummy": ("default", dummy),
    "database": ("default", database),
    "rq": ("wt-default", rq),
}


@pytest.mark.parametrize("alias", list(BACKENDS))
def test_every_subscriber_gets_one_email(alias, section, article, smtp_sink, settings):
    queue, work = BACKENDS[alias]
    if alias == "rq":
        require_redis()
        empty_queues()
    if alias == "dummy":
        clear_enqueued()
    settings.WAGTAIL_TASKS = {
        group: {"backend": alias, "queue": queue} for group in ("notifications", "sending")
    }
    # In-process backends send with this process's settings: the same SMTP server.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_sink.port
    settings.WAGTAIL_TASKS_SEND_BATCH_SIZE = BATCH_SIZE
    subscribers = SubscriptionFactory.create_batch(SUBSCRIBERS, page=section)

    publish(article)
    work(smtp_sink.port)

    counts = Counter(smtp_sink.recipients)
    assert set(counts) == {s.email for s in subscribers}
    assert set(counts.values()) == {1}
    record = Notification.objects.get().record
    assert record.status == TaskStatus.SUCCEEDED, record.error
    assert record.backend_alias == alias and record.percent == 100
    assert record.message == f"{SUBSCRIBERS} sent, 0 failed, 0 skipped"
    batches = TaskRecord.objects.filter(parent=record)
    assert batches.count() == 3
    assert set(batches.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}
    if alias == "rq":
        empty_queues()
