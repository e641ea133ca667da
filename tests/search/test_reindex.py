"""Search reindexing: what each page event enqueues, and what the index holds afterwards."""

import pytest
from django.db import transaction
from wagtail.models import Page
from wagtail.search.models import IndexEntry

from tests.conftest import publish
from tests.factories import ArticlePageFactory, SectionPageFactory
from tests.search.backends import writes_for
from tests.testapp.models import ArticlePage
from wagtail_tasks import conf
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.search.tasks import KIND_REINDEX, KIND_REMOVE, KIND_SUBTREE, reindex_page
from wagtail_tasks.tracking import requeue

pytestmark = pytest.mark.django_db


def live_titles(query):
    return sorted(page.title for page in Page.objects.live().search(query))


def entries_for(page):
    return IndexEntry.objects.filter(object_id=str(page.pk))


def rows(kind=KIND_REINDEX):
    return TaskRecord.objects.filter(kind=kind)


def test_publish_indexes_the_page_once_after_commit(article, run_tasks):
    article.title = "Zebra crossing"
    with run_tasks():
        publish(article)
    assert live_titles("zebra") == ["Zebra crossing"]
    # One index write for one publish: Wagtail's own post_save handler no longer indexes pages.
    assert writes_for(article.pk) == ["add"]
    record = rows().get()
    assert record.status == TaskStatus.SUCCEEDED, record.error
    assert record.group == conf.SEARCH
    assert record.target_object_id == str(article.pk)
    assert record.target_content_type.model_class() is Page
    assert record.message == "Search index updated"


def test_a_rolled_back_publish_enqueues_nothing(article, run_tasks):
    with run_tasks():
        try:
            with transaction.atomic():
                publish(article)
                raise RuntimeError("rollback")
        except RuntimeError:
            pass
    assert not rows().exists()
    assert writes_for(article.pk) == []


def test_a_draft_is_not_found_until_it_is_published(article, run_tasks):
    article.title = "Alpha"
    with run_tasks():
        publish(article)
    page = ArticlePage.objects.get(pk=article.pk)
    page.title = "Omega"
    with run_tasks():
        page.save_revision()
    assert live_titles("omega") == []
    assert live_titles("alpha") == ["Alpha"]
    assert writes_for(article.pk) == ["add"]  # saving a draft wrote nothing
    with run_tasks():
        page.get_latest_revision().publish()
    assert live_titles("omega") == ["Omega"]
    assert live_titles("alpha") == []


def test_unpublish_takes_the_page_out_of_live_results(article, run_tasks):
    article.title = "Vanishing act"
    with run_tasks():
        publish(article)
    with run_tasks():
        ArticlePage.objects.get(pk=article.pk).unpublish()
    assert live_titles("vanishing") == []
    assert writes_for(article.pk) == ["add", "add"]  # reindexed with live=False
    assert entries_for(article).exists()  # still found by the admin's search of drafts


def test_revert_to_an_earlier_revision_reindexes(article, run_tasks):
    article.title = "First words"
    with run_tasks():
        first = publish(article)
        page = ArticlePage.objects.get(pk=article.pk)
        page.title = "Second words"
        publish(page)
    assert live_titles("second") == ["Second words"]
    with run_tasks():
        first.publish()  # what the editor's "revert and publish" does
    assert live_titles("first") == ["First words"]
    assert live_titles("second") == []


def test_moving_a_section_reindexes_its_descendants_in_batches_in_one_task(
    site, run_tasks, settings
):
    settings.WAGTAIL_TASKS_SEARCH_BATCH_SIZE = 2
    with run_tasks():
        old = SectionPageFactory(title="Old", slug="old", parent=site.root_page)
        new = SectionPageFactory(title="New", slug="new", parent=site.root_page)
        moving = SectionPageFactory(title="Moving", slug="moving", parent=old)
        kids = [
            SectionPageFactory(title=f"Kiwi {i}", slug=f"kiwi-{i}", parent=moving) for i in range(4)
        ]
        SectionPageFactory(title="Grandkiwi", slug="grand", parent=kids[0])
    rows().delete()
    from tests.search import backends

    backends.WRITES.clear()

    with run_tasks():
        moving.refresh_from_db()
        moving.move(new, pos="last-child")

    subtree = rows(KIND_SUBTREE).get()
    assert subtree.status == TaskStatus.SUCCEEDED, subtree.error
    assert (subtree.progress_done, subtree.progress_total) == (5, 5)
    assert rows().count() == 1  # the moved page itself, from its own save
    # 5 descendants in batches of 2: three bulk writes, not one task or write per page.
    assert [method for method, _ in backends.WRITES] == ["add", "add_bulk", "add_bulk", "add_bulk"]
    found = Page.objects.live().search("kiwi")
    assert len(found) == 4
    assert all(page.url.startswith("/new/moving/") for page in found)
    assert {p.pk for p in Page.objects.live().descendant_of(new).search("grandkiwi")} == {
        Page.objects.get(slug="grand").pk
    }


def test_a_slug_change_reindexes_the_descendants(section, run_tasks):
    with run_tasks():
        children = [SectionPageFactory(title=f"Child {i}", parent=section) for i in range(3)]
        section.refresh_from_db()
        section.slug = "renamed"
        section.save_revision().publish()
    subtree = rows(KIND_SUBTREE).get()
    assert subtree.status == TaskStatus.SUCCEEDED, subtree.error
    assert subtree.progress_done == len(children)


def test_many_saves_of_one_page_wait_as_one_reindex(article, run_tasks, parked):
    for i in range(100):
        article.title = f"Version {i}"
        with run_tasks():  # 100 separate transactions
            article.save()
    record = rows().get()
    assert record.status == TaskStatus.QUEUED
    reindex_page.call(record.pk, *record.args)  # the worker reads the page as it is now
    record.refresh_from_db()
    assert record.status == TaskStatus.SUCCEEDED
    assert writes_for(article.pk) == ["add"]
    assert Page.objects.search("version").count() == 1
    # Once it ran, the next save enqueues again.
    with run_tasks():
        article.save()
    assert rows().filter(status=TaskStatus.QUEUED).count() == 1


def test_a_page_deleted_before_its_reindex_runs_is_removed_from_the_index(
    article, run_tasks, settings
):
    article.title = "Short lived"
    with run_tasks():
        publish(article)
    assert entries_for(article).exists()
    settings.WAGTAIL_TASKS = {"search": {"backend": "dummy"}}
    page_id = article.pk
    with run_tasks():
        ArticlePage.objects.get(pk=page_id).delete()
    record = rows().get(status=TaskStatus.QUEUED)
    assert record.args == [page_id, "testapp.ArticlePage"]
    assert record.target_repr == "Short lived"
    reindex_page.call(record.pk, *record.args)
    record.refresh_from_db()
    assert record.status == TaskStatus.SUCCEEDED, record.error
    assert record.message == "Removed from the search index"
    assert not IndexEntry.objects.filter(object_id=str(page_id)).exists()


def test_delete_through_the_immediate_backend_removes_the_entry(article, run_tasks):
    with run_tasks():
        publish(article)
    page_id = article.pk
    with run_tasks():
        ArticlePage.objects.get(pk=page_id).delete()
    assert not IndexEntry.objects.filter(object_id=str(page_id)).exists()
    assert set(rows().values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}


def test_a_search_backend_that_is_down_fails_visibly_and_a_retry_succeeds(
    article, run_tasks, counting_search_backend
):
    article.title = "Resilient"
    counting_search_backend.STATE["down"] = True
    with run_tasks():
        publish(article)
    record = rows().get()
    assert record.status == TaskStatus.FAILED
    assert record.error.startswith("SearchServiceDown: search service unavailable")
    assert live_titles("resilient") == []

    counting_search_backend.STATE["down"] = False
    with run_tasks():
        assert requeue(record)
    record.refresh_from_db()
    assert record.status == TaskStatus.SUCCEEDED, record.error
    assert record.attempts == 2
    assert live_titles("resilient") == ["Resilient"]


def test_a_model_that_opts_out_is_left_alone(article, run_tasks, monkeypatch):
    monkeypatch.setattr(ArticlePage, "search_auto_update", False, raising=False)
    with run_tasks():
        publish(article)
        ArticlePage.objects.get(pk=article.pk).delete()
    assert not rows().exists()
    assert writes_for(article.pk) == []


def test_the_setting_turns_automatic_updates_off(article, run_tasks, settings):
    settings.WAGTAIL_TASKS_SEARCH_AUTO_UPDATE = False
    with run_tasks():
        publish(article)
    assert not rows().exists()


def test_wagtails_own_page_handlers_are_disconnected():
    from django.db.models.signals import post_delete, post_save
    from modelsearch.signal_handlers import post_delete_signal_handler, post_save_signal_handler

    from wagtail_tasks.search.policy import on_page_saved

    for signal, handler in (
        (post_save, post_save_signal_handler),
        (post_delete, post_delete_signal_handler),
    ):
        receivers = signal._live_receivers(ArticlePage)[0]
        assert handler not in receivers
    assert on_page_saved in post_save._live_receivers(ArticlePage)[0]
    # Other indexed models (images, documents) keep Wagtail's handlers.
    from wagtail.images.models import Image

    assert post_save_signal_handler in post_save._live_receivers(Image)[0]


def test_aliases_are_reindexed_when_their_original_is_published(article, run_tasks):
    with run_tasks():
        publish(article)
        alias = article.create_alias(parent=article.get_parent(), update_slug="alias-copy")
    article.title = "Shared words"
    with run_tasks():
        publish(article)
    assert sorted(p.pk for p in Page.objects.live().search("shared")) == sorted(
        [article.pk, alias.pk]
    )


def test_factory_page_is_indexed_when_created_live(site, run_tasks):
    with run_tasks():
        page = ArticlePageFactory(title="Born live", live=True)
    assert live_titles("born") == ["Born live"]
    assert writes_for(page.pk) == ["add"]


def test_deleting_a_section_removes_its_pages_in_batches(site, run_tasks, settings):
    settings.WAGTAIL_TASKS_SEARCH_BATCH_SIZE = 2
    with run_tasks():
        section = SectionPageFactory(title="Doomed section", parent=site.root_page)
        for i in range(4):
            SectionPageFactory(title=f"Doomed child {i}", parent=section)
    assert Page.objects.live().search("doomed").count() == 5
    ids = list(Page.objects.descendant_of(section, inclusive=True).values_list("pk", flat=True))
    rows().delete()
    with run_tasks():
        Page.objects.get(pk=section.pk).delete()
    removals = TaskRecord.objects.filter(kind=KIND_REMOVE)
    assert removals.count() == 3  # 5 pages in batches of 2: not one task per page
    assert set(removals.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}
    assert set(removals.values_list("target_repr", flat=True)) == {"Doomed section"}
    assert not rows().exists()
    assert not IndexEntry.objects.filter(object_id__in=[str(pk) for pk in ids]).exists()
