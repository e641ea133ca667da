"""The helpers wagtail_tasks.testing offers to the sites that use it."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.conftest import publish
from tests.factories import SubscriptionFactory
from wagtail_tasks import conf
from wagtail_tasks.models import TaskStatus
from wagtail_tasks.notifications.models import Notification
from wagtail_tasks.site_settings import TaskSettings
from wagtail_tasks.testing import clear_enqueued, enqueued, route_all_to, run_enqueued

pytestmark = pytest.mark.django_db


def test_enqueued_lists_by_kind_and_run_enqueued_runs_until_nothing_is_left(
    section, article, outbox, dummy_tasks, django_capture_on_commit_callbacks
):
    SubscriptionFactory.create_batch(5, page=section)
    with django_capture_on_commit_callbacks(execute=True):
        publish(article)
    [fan_out] = enqueued()
    assert fan_out.kind == "notification" and fan_out.pending
    assert fan_out.record_id == Notification.objects.get().record_id
    assert outbox == []

    assert run_enqueued() == 2  # the fan-out, then the send batch it enqueued
    assert len(outbox) == 5
    assert [t.kind for t in enqueued()] == ["notification", "notification.send"]
    assert enqueued(pending=True) == []
    assert len(enqueued("notification.send")) == 1
    record = Notification.objects.get().record
    record.refresh_from_db()
    assert record.status == TaskStatus.SUCCEEDED and record.percent == 100
    assert run_enqueued() == 0

    clear_enqueued()
    assert enqueued() == []


def test_a_failing_task_does_not_stop_the_others(dummy_tasks):
    from tests.testapp.tasks import count_to, explode
    from wagtail_tasks.tracking import enqueue

    first = enqueue(explode, "boom", kind="test", group=conf.REPORTS)
    second = enqueue(count_to, 3, kind="test", group=conf.REPORTS)
    # Inside the test's transaction the enqueue after commit never comes: hand them over.
    from wagtail_tasks.tracking import send_to_backend

    send_to_backend(first.pk, explode, ["boom"], conf.route_for(conf.REPORTS))
    send_to_backend(second.pk, count_to, [3], conf.route_for(conf.REPORTS))
    assert run_enqueued() == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == TaskStatus.FAILED and "boom" in first.error
    assert second.status == TaskStatus.SUCCEEDED
    assert [t.result.status.name for t in enqueued()] == ["FAILED", "SUCCESSFUL"]


def test_route_all_to_wins_over_settings_and_site_settings(site, settings):
    settings.WAGTAIL_TASKS = {"sending": {"backend": "database"}}
    TaskSettings.objects.create(site=site, sending_backend="rq")
    with route_all_to("immediate") as alias:
        assert alias == "default"
        assert conf.route_for("sending", site=site).backend == "default"
    with route_all_to("dummy"):
        assert conf.route_for("sending", site=site).backend == "dummy"
    assert conf.route_for("sending", site=site).backend == "rq"
    with pytest.raises(ImproperlyConfigured), route_all_to("nope"):
        pass
