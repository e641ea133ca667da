"""When pages are reindexed. Signal handlers decide; tasks do the work.

* A page's own content, ``live`` flag and path change only through a save of its row:
  publishing (also a revert to an earlier revision, scheduled publishing and workflow
  approval), unpublishing, a move and a slug change all save it. So ``post_save`` of a page
  model is the trigger for that page. A save of only the revision bookkeeping fields (an
  editor's draft, ``save_revision``) changes nothing the index holds and is ignored.
  ``page_published``/``page_unpublished`` are not connected: they follow that same save, and
  would only index the page twice.
* A move (``post_page_move``) and a slug change (``page_slug_changed``) also change the path
  and URL of every descendant, which Wagtail updates without saving them: one subtree task.
* A delete (``post_delete``) removes the page from the index.

Everything is decided after commit (a rolled-back publish does nothing) and coalesced: a page
gets at most one reindex per transaction, and none while one is already waiting (QUEUED) for
it, since the task reads the page as it is when it runs.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from wagtail.models import Page, get_page_models

from wagtail_tasks import conf
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.tracking import enqueue

logger = logging.getLogger(__name__)

# Fields that save_revision() writes: a draft, not what the index holds.
REVISION_FIELDS = frozenset(
    {
        "comments",
        "wagtail_admin_comments",
        "latest_revision_created_at",
        "draft_title",
        "latest_revision",
        "has_unpublished_changes",
        "locked",
        "locked_at",
        "locked_by",
    }
)


class AfterCommit:
    """A callback for ``on_commit`` that knows what it is about, so that the same work is
    registered once per transaction (a rolled-back savepoint drops it, as Django does)."""

    def __init__(self, key: tuple[str, int], func: Any, *args: Any) -> None:
        self.key = key
        self.func = func
        self.args = args

    def __call__(self) -> None:
        self.func(*self.args)


def once_after_commit(key: tuple[str, int], func: Any, *args: Any) -> None:
    if connection.in_atomic_block:
        for _sids, pending, _robust in connection.run_on_commit:
            if getattr(pending, "key", None) == key:
                return
    transaction.on_commit(AfterCommit(key, func, *args), robust=True)


def enabled() -> bool:
    return bool(conf.get("WAGTAIL_TASKS_SEARCH_AUTO_UPDATE"))


def waiting(kind: str, page_id: int) -> bool:
    return (
        TaskRecord.objects.filter(
            kind=kind, status=TaskStatus.QUEUED, target_object_id=str(page_id)
        )
        .filter(target_content_type__model="page", target_content_type__app_label="wagtailcore")
        .exists()
    )


def stand_in(model: type[Page], page_id: int, title: str) -> Page:
    """An unsaved page that names the target of a tracking row (the page may be gone)."""
    page = model(pk=page_id, title=title)
    page.id = page_id
    return page


def request_reindex(page_id: int, model_label: str, title: str = "") -> TaskRecord | None:
    """Enqueue a reindex of one page unless one is already waiting. Call after commit."""
    from django.apps import apps

    from wagtail_tasks.search.tasks import KIND_REINDEX, reindex_page

    if waiting(KIND_REINDEX, page_id):
        return None
    page = Page.objects.filter(pk=page_id).first()
    return enqueue(
        reindex_page,
        page_id,
        model_label,
        kind=KIND_REINDEX,
        group=conf.SEARCH,
        target=page or stand_in(apps.get_model(model_label), page_id, title),
        site=page.get_site() if page else None,
    )


def request_subtree(page_id: int) -> TaskRecord | None:
    """Enqueue a reindex of a page's descendants unless one is already waiting."""
    from wagtail_tasks.search.tasks import KIND_SUBTREE, reindex_subtree

    page = Page.objects.filter(pk=page_id).first()
    if page is None or page.is_leaf() or waiting(KIND_SUBTREE, page_id):
        return None
    return enqueue(
        reindex_subtree,
        page_id,
        kind=KIND_SUBTREE,
        group=conf.SEARCH,
        target=page,
        site=page.get_site(),
        total=page.get_descendants().count(),
    )


def request_rebuild(requested_by: Any = None) -> tuple[TaskRecord, bool]:
    """Enqueue a rebuild of the whole index; (the row, True) or (the one in progress, False)."""
    from wagtail_tasks.search.tasks import KIND_REBUILD, rebuild_index

    running = TaskRecord.objects.filter(
        kind=KIND_REBUILD, status__in=[TaskStatus.QUEUED, TaskStatus.RUNNING]
    ).first()
    if running is not None:
        return running, False
    record = enqueue(rebuild_index, kind=KIND_REBUILD, group=conf.SEARCH, requested_by=requested_by)
    return record, True


def specific_model(instance: Page) -> type[Page]:
    return instance.specific_class or type(instance)


def specific_label(instance: Page) -> str:
    return specific_model(instance)._meta.label


def opted_out(instance: Page) -> bool:
    """``search_auto_update = False`` on the page's own model (a delete also signals for the
    base ``Page`` row, which must not override the specific model's choice)."""
    return not getattr(specific_model(instance), "search_auto_update", True)


def on_page_saved(sender: type, instance: Page, **kwargs: Any) -> None:
    if kwargs.get("raw") or not enabled():
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and set(update_fields) <= REVISION_FIELDS:
        return  # a draft: the index follows what is live (the page row), not drafts
    if opted_out(instance):
        return
    once_after_commit(
        ("page", instance.pk),
        request_reindex,
        instance.pk,
        specific_label(instance),
        instance.title,
    )


class DeletedPages(AfterCommit):
    """The pages deleted in one transaction (a section and all its descendants), collected
    into one callback: removed from the index in batches, not one task per page."""

    def __init__(self) -> None:
        super().__init__(("deleted", 0), request_removal, {})

    @property
    def pages(self) -> dict[int, tuple[str, str, int]]:
        return self.args[0]


def on_page_deleted(sender: type, instance: Page, **kwargs: Any) -> None:
    if not enabled() or opted_out(instance):
        return
    collector = None
    if connection.in_atomic_block:
        for _sids, pending, _robust in connection.run_on_commit:
            if isinstance(pending, DeletedPages):
                collector = pending
    if collector is None:
        collector = DeletedPages()
        transaction.on_commit(collector, robust=True)
    # Ids and labels only: the task finds the pages gone and removes their entries.
    collector.pages[instance.pk] = (specific_label(instance), instance.title, instance.depth)


def request_removal(pages: dict[int, tuple[str, str, int]]) -> list[TaskRecord]:
    """One reindex for a single deleted page; batches of removals for a deleted section."""
    from django.apps import apps

    from wagtail_tasks.search.tasks import KIND_REMOVE, remove_pages

    if len(pages) == 1:
        ((page_id, (label, title, _depth)),) = pages.items()
        record = request_reindex(page_id, label, title)
        return [record] if record else []
    top_id, (top_label, top_title, _depth) = min(pages.items(), key=lambda item: item[1][2])
    target = stand_in(apps.get_model(top_label), top_id, top_title)
    ids = sorted(pages)
    size = conf.get("WAGTAIL_TASKS_SEARCH_BATCH_SIZE")
    records = []
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        records.append(
            enqueue(
                remove_pages,
                chunk,
                [pages[pk][0] for pk in chunk],
                kind=KIND_REMOVE,
                group=conf.SEARCH,
                target=target,
                total=len(chunk),
            )
        )
    return records


def on_subtree_changed(sender: type, instance: Page, **kwargs: Any) -> None:
    """``post_page_move`` and ``page_slug_changed``: the descendants' paths and URLs changed."""
    if not enabled():
        return
    if (
        "url_path_before" in kwargs
        and kwargs.get("parent_page_before") == kwargs.get("parent_page_after")
        and kwargs.get("url_path_before") == kwargs.get("url_path_after")
    ):
        return  # a reorder among siblings: no path of a descendant changed
    once_after_commit(("subtree", instance.pk), request_subtree, instance.pk)


def page_models() -> list[type[Page]]:
    from modelsearch.index import class_is_indexed

    return [model for model in get_page_models() if class_is_indexed(model)]


def connect() -> None:
    """Connect our handlers for every indexed page model, and take over from Wagtail's."""
    from wagtail.signals import page_slug_changed, post_page_move

    for model in page_models():
        post_save.connect(on_page_saved, sender=model, dispatch_uid=f"wagtail_tasks.search.{model}")
        post_delete.connect(
            on_page_deleted, sender=model, dispatch_uid=f"wagtail_tasks.search.del.{model}"
        )
    post_page_move.connect(on_subtree_changed, dispatch_uid="wagtail_tasks.search.move")
    page_slug_changed.connect(on_subtree_changed, dispatch_uid="wagtail_tasks.search.slug")
    disconnect_wagtail_handlers()


def disconnect_wagtail_handlers() -> None:
    """Wagtail (modelsearch) connects ``post_save``/``post_delete`` per indexed model in its
    search app's ``ready()``; for page models ours replace them (images, documents and
    snippets keep Wagtail's). Run now, and again right after that ``ready()`` if it has not run
    yet (it comes after ours when wagtail_tasks is listed first in INSTALLED_APPS)."""
    if not conf.get("WAGTAIL_TASKS_SEARCH_REPLACE_WAGTAIL_HANDLERS"):
        return
    from django.apps import apps
    from modelsearch.signal_handlers import post_delete_signal_handler, post_save_signal_handler

    def disconnect() -> None:
        for model in page_models():
            post_save.disconnect(post_save_signal_handler, sender=model)
            post_delete.disconnect(post_delete_signal_handler, sender=model)

    disconnect()
    for config in apps.get_app_configs():
        if config.name in ("wagtail.search", "modelsearch") and not getattr(
            config, "_wagtail_tasks_wrapped", False
        ):
            original = config.ready

            def ready(original: Any = original) -> None:
                original()
                disconnect()

            config.ready = ready  # type: ignore[method-assign]
            config._wagtail_tasks_wrapped = True  # type: ignore[attr-defined]
