"""The Background tasks area: listing, filters, search, detail view, retry, and who may do what."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from wagtail.models import Page, Site

from tests.factories import SuperuserFactory, TaskRecordFactory, UserFactory, editor
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.task_api import task_backends

pytestmark = pytest.mark.django_db

INDEX = "wagtail_tasks_tasks:index"
RESULTS = "wagtail_tasks_tasks:index_results"
INSPECT = "wagtail_tasks_tasks:inspect"
RETRY = "wagtail_tasks_tasks:retry"


def listed_ids(response):
    """The ids of the rows in a listing, in order (from their inspect links)."""
    assert response.status_code == 200
    ids = re.findall(r'href="/admin/background-tasks/inspect/(\d+)/"', response.content.decode())
    return list(dict.fromkeys(int(i) for i in ids))


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


# Listing --------------------------------------------------------------------------------------


def test_listing_shows_every_column_newest_first(admin_client, site):
    user = UserFactory(username="writer", first_name="Wendy", last_name="Writer")
    older = TaskRecordFactory(
        kind="notification",
        target_repr="Big news",
        status=TaskStatus.RUNNING,
        progress_done=3,
        progress_total=12,
        site=site,
        requested_by=user,
        backend_alias="database",
        queue_name="mail",
    )
    newer = TaskRecordFactory(kind="gone.feature", target_repr="Small news")
    TaskRecord.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(hours=1))
    response = admin_client.get(reverse(INDEX))
    content = response.content.decode()
    assert listed_ids(response) == [newer.pk, older.pk]
    assert "Subscriber notification" in content  # the kind's label, not its code
    assert "gone.feature" in content  # an unknown kind reads as its code
    assert "Big news" in content and "Small news" in content
    assert "3/12 (25%)" in content
    assert "database / mail" in content
    assert "Wendy Writer" in content
    assert "Test site" in content
    assert "Running" in content


def test_listing_is_read_only(admin_client, site):
    record = TaskRecordFactory()
    content = admin_client.get(reverse(INDEX)).content.decode()
    assert "Add background task" not in content
    for name in ("add", "edit", "delete", "copy", "history", "usage"):
        with pytest.raises(NoReverseMatch):
            reverse(f"wagtail_tasks_tasks:{name}", args=() if name == "add" else (record.pk,))
    assert admin_client.get(f"/admin/background-tasks/edit/{record.pk}/").status_code == 404


def test_search_finds_by_page_title(admin_client, site):
    hit = TaskRecordFactory(target_repr="Big news about tasks")
    miss = TaskRecordFactory(target_repr="Weather report")
    assert listed_ids(admin_client.get(reverse(INDEX), {"q": "big NEWS"})) == [hit.pk]
    assert listed_ids(admin_client.get(reverse(RESULTS), {"q": "weather"})) == [miss.pk]


def test_filter_by_kind_offers_registered_and_present_kinds(admin_client, site):
    notify = TaskRecordFactory(kind="notification")
    email = TaskRecordFactory(kind="email")
    old = TaskRecordFactory(kind="gone.feature")
    content = admin_client.get(reverse(INDEX)).content.decode()
    for value in ("notification", "subscription.confirm", "email", "gone.feature"):
        assert f'value="{value}"' in content
    assert listed_ids(admin_client.get(reverse(INDEX), {"kind": "notification"})) == [notify.pk]
    assert listed_ids(admin_client.get(reverse(INDEX), {"kind": "email"})) == [email.pk]
    assert listed_ids(admin_client.get(reverse(INDEX), {"kind": "gone.feature"})) == [old.pk]


def test_filter_by_status_site_and_backend(admin_client, site):
    other_site = Site.objects.create(
        hostname="other.example", root_page=Page.objects.get(depth=2), site_name="Other"
    )
    failed = TaskRecordFactory(status=TaskStatus.FAILED, site=site, backend_alias="database")
    done = TaskRecordFactory(status=TaskStatus.SUCCEEDED, site=other_site, backend_alias="dummy")
    queued = TaskRecordFactory(status=TaskStatus.QUEUED, site=None, backend_alias="default")
    get = admin_client.get
    assert listed_ids(get(reverse(INDEX), {"status": "failed"})) == [failed.pk]
    assert listed_ids(get(reverse(INDEX), {"status": "succeeded"})) == [done.pk]
    assert listed_ids(get(reverse(INDEX), {"site": other_site.pk})) == [done.pk]
    assert listed_ids(get(reverse(INDEX), {"backend_alias": "database"})) == [failed.pk]
    assert listed_ids(get(reverse(INDEX), {"backend_alias": "default"})) == [queued.pk]
    both = get(reverse(INDEX), {"status": "failed", "site": other_site.pk})
    assert listed_ids(both) == []


def test_filter_by_created_date_range(admin_client, site):
    now = timezone.now()
    recent = TaskRecordFactory()
    old = TaskRecordFactory()
    TaskRecord.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=10))
    since = (now - timedelta(days=2)).date().isoformat()
    until = (now - timedelta(days=5)).date().isoformat()
    assert listed_ids(admin_client.get(reverse(INDEX), {"created_at_from": since})) == [recent.pk]
    assert listed_ids(admin_client.get(reverse(INDEX), {"created_at_to": until})) == [old.pk]


def test_stuck_and_recently_failed_are_filter_choices(admin_client, site, settings):
    settings.WAGTAIL_TASKS_STUCK_AFTER = 300
    now = timezone.now()
    long_ago = now - timedelta(minutes=10)
    stuck = TaskRecordFactory(status=TaskStatus.RUNNING, started_at=long_ago, heartbeat_at=long_ago)
    alive = TaskRecordFactory(status=TaskStatus.RUNNING, started_at=long_ago, heartbeat_at=now)
    # Waiting for its own queued batches is not stuck.
    waiting = TaskRecordFactory(
        status=TaskStatus.RUNNING, started_at=long_ago, heartbeat_at=long_ago
    )
    TaskRecordFactory(parent=waiting, status=TaskStatus.QUEUED)
    failed_now = TaskRecordFactory(status=TaskStatus.FAILED, finished_at=now)
    TaskRecordFactory(status=TaskStatus.FAILED, finished_at=now - timedelta(days=2))
    assert listed_ids(admin_client.get(reverse(INDEX), {"status": "stuck"})) == [stuck.pk]
    assert listed_ids(admin_client.get(reverse(INDEX), {"status": "failed_24h"})) == [failed_now.pk]
    running = listed_ids(admin_client.get(reverse(INDEX), {"status": "running"}))
    assert sorted(running) == sorted([stuck.pk, alive.pk, waiting.pk])


# Detail view ----------------------------------------------------------------------------------


def test_inspect_shows_timing_origin_error_and_children(admin_client, site):
    user = UserFactory(username="writer", first_name="Wendy", last_name="Writer")
    start = timezone.now() - timedelta(minutes=5)
    parent = TaskRecordFactory(kind="notification", target_repr="Big news", requested_by=user)
    record = TaskRecordFactory(
        parent=parent,
        kind="notification.send",
        status=TaskStatus.FAILED,
        progress_done=40,
        progress_total=100,
        backend_alias="database",
        queue_name="mail",
        backend_task_id="abc-123",
        attempts=2,
        message="SMTP down",
        error="SMTPServerDisconnected: gone\n\nTraceback (most recent call last):\n  <boom>",
        started_at=start,
        finished_at=start + timedelta(seconds=90),
        heartbeat_at=start + timedelta(seconds=80),
    )
    TaskRecordFactory(parent=record, kind="email", status=TaskStatus.SUCCEEDED)
    TaskRecordFactory(parent=record, kind="email", status=TaskStatus.FAILED)
    content = admin_client.get(reverse(INSPECT, args=[record.pk])).content.decode()
    assert "Notification emails" in content
    assert "40/100 (40%)" in content
    assert "database / mail" in content and "abc-123" in content
    assert "SMTP down" in content
    assert "0:01:30" in content  # duration
    assert "<pre" in content and "Traceback (most recent call last):\n  &lt;boom&gt;" in content
    assert f'href="{reverse(INSPECT, args=[parent.pk])}"' in content
    assert "Succeeded: 1" in content and "Failed: 1" in content
    assert "Retry this task" in content

    parent_page = admin_client.get(reverse(INSPECT, args=[parent.pk])).content.decode()
    assert "Wendy Writer" in parent_page
    assert f'href="{reverse(INSPECT, args=[record.pk])}"' in parent_page
    assert "Retry this task" not in parent_page  # not failed: nothing to retry


def test_inspect_of_a_missing_row_is_404(admin_client, site):
    assert admin_client.get(reverse(INSPECT, args=[999999])).status_code == 404


# Retry ----------------------------------------------------------------------------------------


def test_bulk_retry_requeues_failed_rows_and_reports_the_others(
    admin_client, site, settings, run_tasks
):
    settings.WAGTAIL_TASKS = {"notifications": {"backend": "dummy"}}
    backend = task_backends["dummy"]
    backend.clear()
    failed = TaskRecordFactory(status=TaskStatus.FAILED, error="boom", backend_alias="default")
    running = TaskRecordFactory(status=TaskStatus.RUNNING)
    no_task = TaskRecordFactory(status=TaskStatus.FAILED, task_path="")
    with run_tasks():
        response = admin_client.post(
            reverse(RETRY),
            {"id": [failed.pk, running.pk, no_task.pk], "next": reverse(INDEX) + "?status=failed"},
            follow=True,
        )
    assert response.redirect_chain[-1][0] == reverse(INDEX) + "?status=failed"
    failed.refresh_from_db()
    assert (failed.status, failed.error, failed.backend_alias) == (TaskStatus.QUEUED, "", "dummy")
    [result] = backend.results
    assert list(result.args) == [failed.pk, 2]
    assert failed.backend_task_id == str(result.id)
    assert TaskRecord.objects.get(pk=running.pk).status == TaskStatus.RUNNING
    assert TaskRecord.objects.get(pk=no_task.pk).status == TaskStatus.FAILED
    content = response.content.decode()
    assert "1 task was queued again." in content
    assert f"#{running.pk}" in content and f"#{no_task.pk}" in content
    assert "Not retried" in content


def test_retry_from_the_detail_view_runs_the_task_again(admin_client, site, run_tasks):
    record = TaskRecordFactory(status=TaskStatus.FAILED, error="boom", args=[3])
    detail = reverse(INSPECT, args=[record.pk])
    with run_tasks():
        response = admin_client.post(reverse(RETRY), {"id": record.pk, "next": detail})
    assert response.status_code == 302 and response["Location"] == detail
    record.refresh_from_db()
    # The in-process backend ran it at once: it succeeded this time.
    assert (record.status, record.error, record.progress_done, record.attempts) == (
        TaskStatus.SUCCEEDED,
        "",
        3,
        1,
    )


def test_retry_ignores_unsafe_next_urls_and_empty_selections(admin_client, site):
    response = admin_client.post(reverse(RETRY), {"next": "https://evil.example/"}, follow=True)
    assert response.redirect_chain[0][0] == reverse(INDEX)
    assert "No tasks were selected." in response.content.decode()


def test_retry_is_post_only_and_checks_csrf(site):
    record = TaskRecordFactory(status=TaskStatus.FAILED)
    client = Client(enforce_csrf_checks=True)
    client.force_login(SuperuserFactory(username="admin"))
    assert client.get(reverse(RETRY), {"id": record.pk}).status_code == 405
    assert client.post(reverse(RETRY), {"id": record.pk}).status_code == 403
    assert TaskRecord.objects.get(pk=record.pk).status == TaskStatus.FAILED


def test_the_listing_offers_retry_only_for_failed_rows(admin_client, site):
    failed = TaskRecordFactory(status=TaskStatus.FAILED)
    done = TaskRecordFactory(status=TaskStatus.SUCCEEDED)
    content = admin_client.get(reverse(INDEX)).content.decode()
    assert f'name="id" value="{failed.pk}" form="wagtail-tasks-retry-form"' in content
    assert f'name="id" value="{done.pk}"' not in content
    assert 'id="wagtail-tasks-retry-form"' in content and "csrfmiddlewaretoken" in content


# Permissions ----------------------------------------------------------------------------------


USERS = {
    "editor": lambda: editor(),
    "viewer": lambda: editor("view_taskrecord"),
    "changer": lambda: editor("view_taskrecord", "change_taskrecord"),
    "change-only": lambda: editor("change_taskrecord"),
    "superuser": lambda: SuperuserFactory(username="admin"),
}
CAN_VIEW = {"viewer", "changer", "change-only", "superuser"}
CAN_RETRY = {"changer", "change-only", "superuser"}


def test_anonymous_users_are_sent_to_log_in(client, site):
    record = TaskRecordFactory(status=TaskStatus.FAILED)
    for response in (
        client.get(reverse(INDEX)),
        client.get(reverse(RESULTS)),
        client.get(reverse(INSPECT, args=[record.pk])),
        client.post(reverse(RETRY), {"id": record.pk}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("wagtailadmin_login"))
    assert TaskRecord.objects.get(pk=record.pk).status == TaskStatus.FAILED


@pytest.mark.parametrize("who", USERS)
def test_viewing_needs_the_view_permission(client, site, who):
    record = TaskRecordFactory(status=TaskStatus.FAILED, target_repr="Big news")
    client.force_login(USERS[who]())
    for url in (reverse(INDEX), reverse(RESULTS), reverse(INSPECT, args=[record.pk])):
        response = client.get(url)
        if who in CAN_VIEW:
            assert response.status_code == 200
            assert "Big news" in response.content.decode()
        else:
            assert response.status_code == 403
            assert "Big news" not in response.content.decode()


@pytest.mark.parametrize("who", USERS)
def test_retrying_needs_the_change_permission(client, site, who, settings, run_tasks):
    settings.WAGTAIL_TASKS = {"notifications": {"backend": "dummy"}}
    record = TaskRecordFactory(status=TaskStatus.FAILED)
    client.force_login(USERS[who]())
    with run_tasks():
        response = client.post(reverse(RETRY), {"id": record.pk})
    status = TaskRecord.objects.get(pk=record.pk).status
    if who in CAN_RETRY:
        assert response.status_code == 302
        assert status == TaskStatus.QUEUED
    else:
        assert response.status_code == 403
        assert status == TaskStatus.FAILED
    # The retry controls are shown exactly to those who may use them.
    if who in CAN_VIEW:
        TaskRecord.objects.filter(pk=record.pk).update(status=TaskStatus.FAILED)
        listing = client.get(reverse(INDEX)).content.decode()
        detail = client.get(reverse(INSPECT, args=[record.pk])).content.decode()
        assert ("wagtail-tasks-retry-form" in listing) == (who in CAN_RETRY)
        assert ("Retry this task" in detail) == (who in CAN_RETRY)


@pytest.mark.parametrize("who", USERS)
def test_the_menu_item_is_shown_to_those_who_may_view(client, site, who):
    client.force_login(USERS[who]())
    content = client.get(reverse("wagtailadmin_home")).content.decode()
    assert ("/admin/background-tasks/" in content) == (who in CAN_VIEW)


def test_view_and_change_are_offered_in_the_group_editor(admin_client):
    content = admin_client.get(reverse("wagtailusers_groups:add")).content.decode()
    view = Permission.objects.get(codename="view_taskrecord")
    change = Permission.objects.get(codename="change_taskrecord")
    add = Permission.objects.get(codename="add_taskrecord")
    assert f'value="{view.pk}"' in content
    assert f'value="{change.pk}"' in content
    assert f'value="{add.pk}"' not in content  # rows are never added by hand


def test_retry_of_rows_that_are_gone_is_reported(admin_client, site):
    response = admin_client.post(reverse(RETRY), {"id": [999999]}, follow=True)
    assert "The selected tasks no longer exist." in response.content.decode()


@pytest.mark.parametrize("who", USERS)
def test_the_search_rebuild_is_offered_to_those_who_may_change(client, site, who):
    client.force_login(USERS[who]())
    response = client.get(reverse(INDEX))
    if who not in CAN_VIEW:
        assert response.status_code == 403
        return
    offered = reverse("wagtail_tasks_search:rebuild") in response.content.decode()
    assert offered == (who in CAN_RETRY)
