"""The dashboard panel: counts of running, queued, recently failed and stuck work."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.admin.test_tasks_area import CAN_VIEW, USERS, listed_ids
from tests.factories import TaskRecordFactory
from wagtail_tasks.admin.dashboard import TasksDashboardPanel, task_counts
from wagtail_tasks.models import TaskStatus

pytestmark = pytest.mark.django_db

HOME = "wagtailadmin_home"
INDEX = "wagtail_tasks_tasks:index"


@pytest.fixture
def work(site, settings):
    """Rows of every kind the panel counts, and some it must not."""
    settings.WAGTAIL_TASKS_STUCK_AFTER = 300
    now = timezone.now()
    long_ago = now - timedelta(minutes=10)
    rows = {
        "alive": TaskRecordFactory(status=TaskStatus.RUNNING, started_at=now, heartbeat_at=now),
        "stuck": TaskRecordFactory(
            status=TaskStatus.RUNNING, started_at=long_ago, heartbeat_at=long_ago
        ),
        # Started long ago with no heartbeat at all: stuck too.
        "silent": TaskRecordFactory(status=TaskStatus.RUNNING, started_at=long_ago),
        # A fan-out waiting for its queued batches: running, not stuck.
        "waiting": TaskRecordFactory(
            status=TaskStatus.RUNNING, started_at=long_ago, heartbeat_at=long_ago
        ),
        "failed_now": TaskRecordFactory(status=TaskStatus.FAILED, finished_at=now),
        "failed_old": TaskRecordFactory(
            status=TaskStatus.FAILED, finished_at=now - timedelta(days=2)
        ),
        "done": TaskRecordFactory(status=TaskStatus.SUCCEEDED, finished_at=now),
    }
    rows["batches"] = TaskRecordFactory.create_batch(
        3, parent=rows["waiting"], status=TaskStatus.QUEUED
    )
    return rows


def panel_counts(content):
    """{key: count} as the panel renders them."""
    found = re.findall(
        r'data-wagtail-tasks-count="(\w+)">.*?<td><a href="([^"]+)">(\d+)</a></td>',
        content,
        re.S,
    )
    return {key: (int(count), url.replace("&amp;", "&")) for key, url, count in found}


def test_counts_are_right(work):
    assert task_counts() == {"running": 4, "queued": 3, "failed": 1, "stuck": 2}


def test_the_panel_shows_the_counts_and_links_to_the_same_rows(admin_client, work):
    counts = panel_counts(admin_client.get(reverse(HOME)).content.decode())
    assert {key: count for key, (count, _) in counts.items()} == {
        "running": 4,
        "queued": 3,
        "failed": 1,
        "stuck": 2,
    }
    index = reverse(INDEX)
    assert counts["stuck"][1] == f"{index}?status=stuck"
    assert counts["failed"][1] == f"{index}?status=failed_24h"
    # Following each link lists exactly the rows that were counted.
    for key, (count, url) in counts.items():
        assert len(listed_ids(admin_client.get(url))) == count, key
    stuck = listed_ids(admin_client.get(counts["stuck"][1]))
    assert sorted(stuck) == sorted([work["stuck"].pk, work["silent"].pk])
    assert listed_ids(admin_client.get(counts["failed"][1])) == [work["failed_now"].pk]


def test_the_counts_take_one_query(work, django_assert_num_queries):
    with django_assert_num_queries(1):
        task_counts()


def test_the_panel_renders_in_a_constant_number_of_queries(site, django_assert_max_num_queries):
    TaskRecordFactory(status=TaskStatus.RUNNING)
    with CaptureQueriesContext(connection) as few:
        TasksDashboardPanel().render_html({})
    TaskRecordFactory.create_batch(25, status=TaskStatus.FAILED, finished_at=timezone.now())
    TaskRecordFactory.create_batch(25, status=TaskStatus.QUEUED)
    with django_assert_max_num_queries(1):
        html = TasksDashboardPanel().render_html({})
    assert len(few) == 1
    assert panel_counts(html)["failed"][0] == 25


def test_the_dashboard_query_count_does_not_grow_with_the_rows(admin_client, site):
    TaskRecordFactory(status=TaskStatus.RUNNING)
    admin_client.get(reverse(HOME))  # warm caches (content types, site root)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(reverse(HOME))
    TaskRecordFactory.create_batch(30, status=TaskStatus.RUNNING)
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(reverse(HOME))
    assert len(many) == len(few)
    assert panel_counts(response.content.decode())["running"][0] == 31


@pytest.mark.parametrize("who", USERS)
def test_the_panel_is_shown_only_to_those_who_may_view_tasks(client, site, who):
    TaskRecordFactory(status=TaskStatus.QUEUED)
    client.force_login(USERS[who]())
    response = client.get(reverse(HOME))
    assert response.status_code == 200
    shown = 'id="wagtail-tasks-section"' in response.content.decode()
    assert shown == (who in CAN_VIEW)
    if shown:
        assert panel_counts(response.content.decode())["queued"][0] == 1
