"""Search work through a real db_worker process (SQLite, and PostgreSQL's full-text search
when DATABASE_URL points there)."""

import pytest
from wagtail.models import Page

from tests.conftest import publish
from tests.factories import SectionPageFactory
from tests.worker import drain, worker_env
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.search.policy import request_rebuild
from wagtail_tasks.search.tasks import KIND_REBUILD, KIND_REINDEX, KIND_SUBTREE

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.worker,
]


@pytest.fixture(autouse=True)
def on_database_backend(settings):
    settings.WAGTAIL_TASKS = {"search": {"backend": "database"}}
    # The worker indexes with the configured database backend, not the test double.
    settings.WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}


def live_titles(query):
    return sorted(page.title for page in Page.objects.live().search(query))


def test_publish_move_and_unpublish_through_a_worker(site, article):
    article.title = "Quokka sighting"
    for _ in range(5):  # five publishes, committed one by one: one reindex waits
        publish(article)
    waiting = TaskRecord.objects.filter(kind=KIND_REINDEX, status=TaskStatus.QUEUED)
    assert waiting.filter(target_object_id=str(article.pk)).count() == 1
    assert live_titles("quokka") == []  # nothing indexed before the worker runs

    drain(worker_env(0))
    assert live_titles("quokka") == ["Quokka sighting"]

    elsewhere = SectionPageFactory(title="Elsewhere", slug="elsewhere", parent=site.root_page)
    section = article.get_parent()
    children = [SectionPageFactory(title=f"Quokka kid {i}", parent=section) for i in range(3)]
    section.refresh_from_db()
    section.move(elsewhere, pos="last-child")
    drain(worker_env(0))
    subtree = TaskRecord.objects.filter(kind=KIND_SUBTREE).get()
    assert subtree.status == TaskStatus.SUCCEEDED, subtree.error
    assert subtree.progress_done == len(children) + 1
    found = Page.objects.live().search("quokka")
    assert len(found) == 4
    assert all(page.url.startswith("/elsewhere/news/") for page in found)

    Page.objects.get(pk=article.pk).specific.unpublish()
    drain(worker_env(0))
    assert live_titles("sighting") == []
    failed = TaskRecord.objects.exclude(status=TaskStatus.SUCCEEDED)
    assert not failed.exists(), list(failed.values_list("kind", "error"))


def test_rebuild_through_a_worker(site):
    for i in range(5):
        SectionPageFactory(title=f"Wombat {i}")
    drain(worker_env(0))
    record, created = request_rebuild()
    assert created
    drain(worker_env(0))
    record = TaskRecord.objects.get(kind=KIND_REBUILD)
    assert record.status == TaskStatus.SUCCEEDED, record.error
    assert record.progress_done == record.progress_total >= 7
    assert len(live_titles("wombat")) == 5
