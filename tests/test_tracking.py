"""The one enqueue path and the tracking rows every task reports on."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from wagtail.models import Page

from tests.conftest import publish
from tests.testapp.tasks import count_to, explode, flaky, give_up
from wagtail_tasks import tracking
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.notifications.models import Notification
from wagtail_tasks.task_api import task_backends

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def enqueue(task, *args, **kwargs):
    return tracking.enqueue(task, *args, kind="test", group="notifications", **kwargs)


def test_a_task_runs_only_after_commit_and_succeeds(run_tasks, site):
    with run_tasks():
        record = enqueue(count_to, 5, target=site.root_page, site=site)
        assert TaskRecord.objects.get(pk=record.pk).status == TaskStatus.QUEUED
    record.refresh_from_db()
    assert record.status == TaskStatus.SUCCEEDED
    assert (record.progress_done, record.progress_total, record.attempts) == (5, 5, 1)
    assert record.target == site.root_page
    assert record.target_repr == site.root_page.title
    assert record.backend_alias == "default" and record.queue_name == "default"
    assert record.started_at <= record.finished_at
    assert record.backend_task_id


def test_progress_writes_are_throttled(run_tasks, settings):
    settings.WAGTAIL_TASKS_PROGRESS_INTERVAL = 3600
    with run_tasks():
        record = enqueue(count_to, 500)
    with CaptureQueriesContext(connection) as queries, run_tasks():
        TaskRecord.objects.filter(pk=record.pk).update(status=TaskStatus.QUEUED)
        count_to.call(record.pk, 500)
    writes = [q["sql"] for q in queries if q["sql"].startswith("UPDATE")]
    # Queued (above), running, one progress write (the first), finished: not one per item.
    assert len(writes) == 4, writes
    record.refresh_from_db()
    assert (record.progress_done, record.status) == (500, TaskStatus.SUCCEEDED)


def test_a_failing_task_keeps_its_error_on_the_row(run_tasks):
    with run_tasks():
        record = enqueue(explode, "the search backend is down")
    record.refresh_from_db()
    assert record.status == TaskStatus.FAILED
    assert record.message == "the search backend is down"
    assert record.error.startswith("ValueError: the search backend is down\n\nTraceback")
    assert record.progress_done == 1 and record.finished_at is not None


def test_a_cancelled_task_is_cancelled_not_failed(run_tasks):
    with run_tasks():
        record = enqueue(give_up)
    record.refresh_from_db()
    assert (record.status, record.message, record.error) == (
        TaskStatus.CANCELLED,
        "Nothing left to do.",
        "",
    )


def test_a_finished_row_is_not_run_again(run_tasks):
    with run_tasks():
        record = enqueue(count_to, 3)
    assert count_to.call(record.pk, 3) is None
    record.refresh_from_db()
    assert record.attempts == 1


def test_a_missing_row_does_not_run():
    assert count_to.call(123456, 3) is None


def test_an_unknown_backend_fails_the_row_not_the_request(run_tasks, settings):
    settings.WAGTAIL_TASKS = {"notifications": {"backend": "no-such-backend"}}
    with run_tasks():
        record = enqueue(count_to, 3)  # does not raise
    record.refresh_from_db()
    assert record.status == TaskStatus.FAILED
    assert record.error.startswith("Could not enqueue on backend 'no-such-backend':")
    assert record.backend_alias == "no-such-backend"


def test_publishing_with_a_broken_backend_still_publishes(
    article, subscribers, outbox, run_tasks, settings
):
    settings.WAGTAIL_TASKS = {"notifications": {"backend": "no-such-backend"}}
    with run_tasks():
        publish(article)
    article.refresh_from_db()
    assert article.live
    record = Notification.objects.get().record
    assert record.status == TaskStatus.FAILED
    assert "no-such-backend" in record.error
    assert outbox == []


def test_enqueued_arguments_are_ids_only(article, subscribers, run_tasks, settings):
    settings.WAGTAIL_TASKS = {"notifications": {"backend": "dummy"}}
    backend = task_backends["dummy"]
    backend.clear()
    with run_tasks():
        publish(article)
    [result] = backend.results
    notification = Notification.objects.get()
    assert list(result.args) == [notification.record_id, notification.pk]
    assert result.task.name == "fan_out_notification"
    # Nothing personal: no address, no title, only integers that survive JSON.
    encoded = json.dumps([list(result.args), result.kwargs])
    assert all(s.email not in encoded for s in subscribers)
    assert "Big news" not in encoded
    assert all(isinstance(arg, int) for arg in result.args)


def test_queue_and_priority_come_from_settings(run_tasks, settings):
    settings.WAGTAIL_TASKS = {"notifications": {"backend": "dummy", "queue": "mail"}}
    settings.TASKS = {**settings.TASKS, "dummy": {**settings.TASKS["dummy"], "QUEUES": ["mail"]}}
    backend = task_backends["dummy"]
    with run_tasks():
        record = enqueue(count_to, 1)
    [result] = backend.results
    assert result.task.queue_name == "mail"
    record.refresh_from_db()
    assert (record.queue_name, record.status) == ("mail", TaskStatus.QUEUED)
    assert record.backend_task_id == str(result.id)


def test_work_about_a_page_is_found_whether_it_was_given_specific_or_not(run_tasks, article):
    # The notification's fan-out is enqueued with the specific page, its send batches with the
    # base Page: both are recorded as a Page, so one lookup by id finds all of them.
    with run_tasks():
        specific = enqueue(count_to, 1, target=article)
        base = enqueue(count_to, 1, target=Page.objects.get(pk=article.pk))
    other = enqueue(count_to, 1, target=article.get_parent())
    found = TaskRecord.objects.for_target(article)
    assert set(found) == {specific, base}
    assert set(TaskRecord.objects.for_target(Page.objects.get(pk=article.pk))) == {specific, base}
    assert other not in found
    assert specific.target_content_type.model_class() is Page


def test_a_row_keeps_what_a_retry_needs_and_nothing_personal(run_tasks):
    with run_tasks():
        record = enqueue(count_to, 3)
    record.refresh_from_db()
    assert record.task_path == "tests.testapp.tasks.count_to"
    assert (record.group, record.args) == ("notifications", [3])


def test_a_failed_enqueue_is_retried_once_the_backend_is_back(run_tasks, settings):
    settings.WAGTAIL_TASKS = {"notifications": {"backend": "no-such-backend"}}
    with run_tasks():
        record = enqueue(count_to, 4)
    record.refresh_from_db()
    assert record.status == TaskStatus.FAILED

    settings.WAGTAIL_TASKS = {}  # the configuration is mended: the retry takes the new route
    with run_tasks():
        assert tracking.requeue(record) is True
        assert TaskRecord.objects.get(pk=record.pk).status == TaskStatus.QUEUED
    record.refresh_from_db()
    assert (record.status, record.error, record.backend_alias) == (
        TaskStatus.SUCCEEDED,
        "",
        "default",
    )
    assert (record.progress_done, record.attempts) == (4, 1)


def test_a_failed_task_is_retried_and_its_error_cleared(run_tasks):
    with run_tasks():
        record = enqueue(explode, "down for now")
    with run_tasks():
        assert tracking.requeue(TaskRecord.objects.get(pk=record.pk)) is True
    record.refresh_from_db()
    # It fails again (the same body), as a second attempt on the same row.
    assert (record.status, record.attempts) == (TaskStatus.FAILED, 2)
    assert record.error.startswith("ValueError: down for now")


@pytest.mark.parametrize("status", [TaskStatus.SUCCEEDED, TaskStatus.RUNNING, TaskStatus.QUEUED])
def test_only_failed_rows_are_retried(run_tasks, status):
    with run_tasks():
        record = enqueue(count_to, 1)
    TaskRecord.objects.filter(pk=record.pk).update(status=status)
    with run_tasks() as callbacks:
        assert tracking.requeue(TaskRecord.objects.get(pk=record.pk)) is False
    assert callbacks == []
    assert TaskRecord.objects.get(pk=record.pk).status == status


def test_a_retry_is_deferred_only_where_the_backend_supports_it(run_tasks, settings):
    later = timezone.now() + timedelta(minutes=5)
    settings.WAGTAIL_TASKS = {"notifications": {"backend": "dummy"}}
    backend = task_backends["dummy"]
    backend.clear()
    with run_tasks():
        record = enqueue(count_to, 1)
    TaskRecord.objects.filter(pk=record.pk).update(status=TaskStatus.FAILED)
    with run_tasks():
        tracking.requeue(TaskRecord.objects.get(pk=record.pk), run_after=later)
    first, retried = backend.results
    assert first.task.run_after is None
    assert retried.task.run_after == later
    assert list(retried.args) == [record.pk, 1]

    # The in-process backend cannot defer: the retry runs at once rather than never.
    settings.WAGTAIL_TASKS = {}
    TaskRecord.objects.filter(pk=record.pk).update(status=TaskStatus.FAILED)
    with run_tasks():
        tracking.requeue(TaskRecord.objects.get(pk=record.pk), run_after=later)
    assert TaskRecord.objects.get(pk=record.pk).status == TaskStatus.SUCCEEDED


def test_retry_later_requeues_the_row_deferred_on_a_backend_that_can_defer(run_tasks, settings):
    settings.WAGTAIL_TASKS = {"notifications": {"backend": "dummy"}}
    backend = task_backends["dummy"]
    backend.clear()
    with run_tasks():
        record = enqueue(flaky, 3)
    first = backend.results[-1]
    before = timezone.now()
    with run_tasks():
        flaky.call(*first.args)  # the worker runs attempt 1
    record.refresh_from_db()
    assert record.status == TaskStatus.QUEUED and record.attempts == 1
    assert record.message.startswith("Attempt 1 failed, retrying at ")
    assert record.message.endswith("not yet (attempt 1)")
    assert record.error == "the last error"  # visible while it waits
    assert len(backend.results) == 2
    retry = backend.results[-1]
    assert retry.args == first.args  # ids only, the same ones
    run_after = retry.task.run_after
    assert before + timedelta(seconds=29) < run_after < timezone.now() + timedelta(seconds=31)

    with run_tasks():
        flaky.call(*retry.args)  # attempt 2: deferred again
        flaky.call(*backend.results[-1].args)  # attempt 3 succeeds
    record.refresh_from_db()
    assert record.status == TaskStatus.SUCCEEDED and record.attempts == 3
    assert record.error == "" and len(backend.results) == 3


def test_retry_later_without_defer_fails_the_row_instead_of_looping(run_tasks):
    # The in-process backend cannot defer: retrying at once would run inside this very call.
    assert not task_backends["default"].supports_defer
    with run_tasks():
        record = enqueue(flaky, 2)
    record.refresh_from_db()
    assert record.status == TaskStatus.FAILED and record.attempts == 1
    assert record.message == (
        "Not retried automatically (backend 'default' cannot defer): not yet (attempt 1)"
    )
    assert record.error == "the last error"
    # Not lost: a person (or code) retries it, and attempt 2 succeeds.
    with run_tasks():
        assert tracking.requeue(record)
    record.refresh_from_db()
    assert record.status == TaskStatus.SUCCEEDED and record.attempts == 2
