"""Rebuilding the whole index from the admin, in the background, with progress."""

import pytest
from django.test import Client
from django.urls import reverse
from wagtail.models import Page
from wagtail.search.models import IndexEntry

from tests.factories import SectionPageFactory, SuperuserFactory, editor
from tests.search.backends import WRITES
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.search.tasks import KIND_REBUILD

pytestmark = pytest.mark.django_db

URL = "wagtail_tasks_search:rebuild"


def test_an_editor_without_the_permission_cannot_rebuild(client):
    client.force_login(editor())
    assert client.get(reverse(URL)).status_code == 403
    assert client.post(reverse(URL)).status_code == 403
    assert not TaskRecord.objects.filter(kind=KIND_REBUILD).exists()


def test_the_post_needs_a_csrf_token():
    client = Client(enforce_csrf_checks=True)
    client.force_login(SuperuserFactory(username="admin"))
    assert client.post(reverse(URL)).status_code == 403
    assert not TaskRecord.objects.filter(kind=KIND_REBUILD).exists()


def test_the_confirmation_page_and_a_rebuild_in_the_background(client, site, run_tasks, settings):
    settings.WAGTAIL_TASKS_SEARCH_BATCH_SIZE = 3
    with run_tasks():
        for i in range(7):
            SectionPageFactory(title=f"Rebuilt {i}")
    IndexEntry.objects.all().delete()
    WRITES.clear()
    client.force_login(editor("change_taskrecord"))
    response = client.get(reverse(URL))
    assert response.status_code == 200
    assert b"Rebuild search index" in response.content

    with run_tasks():
        response = client.post(reverse(URL))
    assert response.status_code == 302
    record = TaskRecord.objects.get(kind=KIND_REBUILD)
    assert record.status == TaskStatus.SUCCEEDED, record.error
    pages = Page.objects.count()
    assert record.progress_total == record.progress_done
    assert record.progress_done >= pages
    assert record.message == f"{record.progress_done} objects indexed"
    assert Page.objects.live().search("rebuilt").count() == 7
    assert IndexEntry.objects.count() == record.progress_done

    # The page shows the last rebuild.
    assert b"Succeeded" in client.get(reverse(URL)).content


def test_a_second_click_while_a_rebuild_waits_does_not_start_another(client, parked):
    client.force_login(SuperuserFactory(username="admin"))
    client.post(reverse(URL))
    client.post(reverse(URL))
    assert TaskRecord.objects.filter(kind=KIND_REBUILD).count() == 1
    assert b"disabled" in client.get(reverse(URL)).content


def test_the_settings_menu_offers_the_action_to_those_allowed(client):
    client.force_login(SuperuserFactory(username="admin"))
    assert reverse(URL).encode() in client.get(reverse("wagtailadmin_home")).content
    client.force_login(editor())
    assert reverse(URL).encode() not in client.get(reverse("wagtailadmin_home")).content
