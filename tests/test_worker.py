"""End to end with real parts: the database backend, real db_worker processes, a real SMTP server.

Runs on SQLite, and on PostgreSQL when DATABASE_URL points there.
"""

import os

import pytest
from django.db import connection

from tests.conftest import publish
from tests.factories import SubscriptionFactory
from tests.worker import drain, worker_env
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.notifications.models import Delivery, DeliveryStatus, Notification

# serialized_rollback: the flush after each test removes what Wagtail's migrations created.
pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.worker,
]

DATABASE_ROUTES = {"notifications": {"backend": "database"}, "sending": {"backend": "database"}}


@pytest.fixture
def on_database_backend(settings):
    settings.WAGTAIL_TASKS = DATABASE_ROUTES


def test_publish_reaches_every_subscriber_once_through_two_workers(
    section, article, smtp_sink, on_database_backend
):
    subscribers = SubscriptionFactory.create_batch(300, page=section)
    SubscriptionFactory(page=section, email="broken address")
    SubscriptionFactory(page=section, email="waiting@example.com", status="pending")

    publish(article)  # committed: the fan-out is now a row in the database backend's table
    record = Notification.objects.get().record
    assert record.status == TaskStatus.QUEUED and record.backend_task_id
    assert smtp_sink.count == 0

    drain(worker_env(smtp_sink.port, batch_size=40), workers=2)

    assert smtp_sink.count == 300
    assert sorted(smtp_sink.recipients) == sorted(s.email for s in subscribers)
    record.refresh_from_db()
    assert record.status == TaskStatus.SUCCEEDED, record.error
    assert (record.progress_done, record.progress_total) == (301, 301)
    assert record.message == "300 sent, 0 failed, 1 skipped"
    batches = TaskRecord.objects.filter(parent=record)
    assert batches.count() == 8  # 300 pending deliveries in batches of 40
    assert set(batches.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}
    assert set(batches.values_list("backend_alias", flat=True)) == {"database"}
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 300
    # Every message carries the one-click unsubscribe headers.
    one_click = {m["List-Unsubscribe-Post"] for m in smtp_sink.messages}
    assert one_click == {"List-Unsubscribe=One-Click"}

    # Draining again (a redelivery, a second worker) sends nothing more.
    drain(worker_env(smtp_sink.port))
    assert smtp_sink.count == 300


def test_worker_records_a_template_error_on_the_tracking_row(
    section, article, smtp_sink, on_database_backend, tmp_path
):
    SubscriptionFactory.create_batch(2, page=section)
    publish(article)
    # The worker renders with its own settings; break the template it will load.
    broken = tmp_path / "wagtail_tasks" / "notifications"
    broken.mkdir(parents=True)
    (broken / "email_body.txt").write_text("{% if %}")
    env = worker_env(smtp_sink.port)
    env["WAGTAIL_TASKS_TEST_TEMPLATE_DIR"] = str(tmp_path)
    drain(env)
    record = Notification.objects.get().record
    assert record.status == TaskStatus.FAILED
    assert record.error.startswith("TemplateSyntaxError:")
    assert smtp_sink.count == 0


def test_runs_on_the_configured_database():
    # Not a check of our code: a guard that the PostgreSQL leg really uses PostgreSQL.
    on_postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
    expected = "postgresql" if on_postgres else "sqlite"
    assert connection.vendor == expected
