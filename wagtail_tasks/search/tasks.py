"""The search tasks: reindex one page, the descendants of a moved page, or the whole index.

Every task takes its tracking row's id first, then ids and labels only. Each reads the
*current* state of the database when it runs, so it can run twice, late, or after the page
is gone: a page that no longer exists is removed from the index; a model that opts out of
automatic updates (``search_auto_update = False``) is left alone. A search backend error is
not swallowed (unlike Wagtail's ``insert_or_update_object``): it fails the row, visibly, and
``tracking.requeue`` runs it again once the backend is back.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.translation import gettext_lazy as _
from modelsearch.backends import get_search_backend, get_search_backends_with_name
from modelsearch.conf import get_app_config
from modelsearch.index import class_is_indexed, get_indexed_models
from wagtail.models import Page

from wagtail_tasks import conf
from wagtail_tasks.kinds import register_kind
from wagtail_tasks.task_api import task
from wagtail_tasks.tracking import TaskRun, tracked

logger = logging.getLogger(__name__)

KIND_REINDEX = register_kind("search.reindex", _("Search index update"))
KIND_SUBTREE = register_kind("search.subtree", _("Search index update of a section"))
KIND_REMOVE = register_kind("search.remove", _("Search index removal of deleted pages"))
KIND_REBUILD = register_kind("search.rebuild", _("Search index rebuild"))


def auto_updated(model: type[models.Model]) -> bool:
    """Whether pages of this model are kept in the index automatically."""
    return bool(class_is_indexed(model)) and getattr(model, "search_auto_update", True)


def auto_update_backends() -> list[Any]:
    """The configured search backends that take automatic updates (not ``AUTO_UPDATE: False``)."""
    return [backend for _name, backend in get_search_backends_with_name(with_auto_update=True)]


def model_for(label: str) -> type[models.Model] | None:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


@task
@tracked
def reindex_page(run: TaskRun, page_id: int, model_label: str) -> str:
    """Bring one page's index entry in line with the page as it is now."""
    model = model_for(model_label)
    if model is None:
        run.progress(0, 1, message=f"Unknown model {model_label}; nothing to do", force=True)
        return "skipped"
    if not getattr(model, "search_auto_update", True):
        run.progress(0, 1, message="This page type is not updated automatically", force=True)
        return "skipped"
    backends = auto_update_backends()
    instance = model._default_manager.filter(pk=page_id).first()
    indexed = None
    if instance is not None:
        indexed = instance.get_indexed_instance()
        # Only what the model says belongs in the index (Wagtail: its own content type).
        if indexed is not None and not (
            type(indexed).get_indexed_objects().filter(pk=indexed.pk).exists()
        ):
            indexed = None
    if instance is None or indexed is None:
        # Deleted (or no longer indexable) before we ran: take it out of the index.
        stand_in = model(pk=page_id)
        for backend in backends:
            backend.delete(stand_in)
        run.progress(1, 1, message="Removed from the search index", force=True)
        return "removed"
    if not auto_updated(type(indexed)):
        run.progress(0, 1, message="This page type is not updated automatically", force=True)
        return "skipped"
    for backend in backends:
        backend.add(indexed)
    run.progress(1, 1, message="Search index updated", force=True)
    return "indexed"


@task
@tracked
def remove_pages(run: TaskRun, page_ids: list[int], model_labels: list[str]) -> int:
    """Remove deleted pages (a deleted section) from the index; a page that exists is left."""
    backends = auto_update_backends()
    existing = set(Page.objects.filter(pk__in=page_ids).values_list("pk", flat=True))
    removed = 0
    for done, (page_id, label) in enumerate(zip(page_ids, model_labels, strict=True), start=1):
        model = model_for(label)
        if model is not None and page_id not in existing:
            for backend in backends:
                backend.delete(model(pk=page_id))
            removed += 1
        run.progress(done, len(page_ids))
    run.progress(len(page_ids), len(page_ids), message=f"{removed} deleted pages removed")
    return removed


def id_chunks(queryset: models.QuerySet, size: int) -> Iterator[list[int]]:
    """Primary keys of ``queryset`` in ascending chunks, by keyset pagination."""
    last = 0
    while True:
        chunk = list(
            queryset.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:size]
        )
        if not chunk:
            return
        last = chunk[-1]
        yield chunk


def index_pages(page_ids: list[int], backends: list[Any]) -> int:
    """Index these pages (as their specific models), one bulk write per model and backend."""
    by_model: dict[type[models.Model], list[int]] = defaultdict(list)
    for pk, content_type_id in Page.objects.filter(pk__in=page_ids).values_list(
        "pk", "content_type_id"
    ):
        model = ContentType.objects.get_for_id(content_type_id).model_class()
        if model is not None and auto_updated(model):
            by_model[model].append(pk)
    written = 0
    for model, ids in by_model.items():
        objects = list(model.get_indexed_objects().filter(pk__in=ids))
        if not objects:
            continue
        for backend in backends:
            backend.add_bulk(model, objects)
        written += len(objects)
    return written


@task
@tracked
def reindex_subtree(run: TaskRun, page_id: int) -> int:
    """Reindex every descendant of a page (a move or slug change changed their paths and URLs).

    Walks the subtree as it is now, ``WAGTAIL_TASKS_SEARCH_BATCH_SIZE`` pages at a time: one
    task, constant memory, one bulk index write per model per batch.
    """
    page = Page.objects.filter(pk=page_id).first()
    if page is None:
        run.progress(0, 0, message="The page was deleted; nothing to do", force=True)
        return 0
    descendants = Page.objects.descendant_of(page)
    total = descendants.count()
    run.progress(0, total, message="Updating the search index", force=True)
    backends = auto_update_backends()
    done = 0
    for chunk in id_chunks(descendants, conf.get("WAGTAIL_TASKS_SEARCH_BATCH_SIZE")):
        index_pages(chunk, backends)
        done += len(chunk)
        run.progress(done, total)
    run.progress(done, total, message=f"{done} pages updated in the search index")
    return done


def rebuild_backend(name: str) -> Any:
    """The backend to rebuild with. The database backends' atomic rebuild would hold one
    database transaction for the whole rebuild (progress invisible, SQLite locked for
    everyone): they update entries in place instead, after deleting stale ones."""
    backend = get_search_backend(name)
    if type(backend).__module__.startswith("modelsearch.backends.database"):
        backend = get_search_backend(name, ATOMIC_REBUILD=False)
    return backend


def group_models_by_index(backend: Any) -> dict[Any, list[type[models.Model]]]:
    """Indexed models grouped by the backend's index they live in (as ``update_index`` does)."""
    grouped: dict[Any, tuple[Any, list[type[models.Model]]]] = {}
    for model in get_indexed_models():
        index = backend.get_index_for_model(model)
        grouped.setdefault(index.get_key(), (index, []))[1].append(model)
    return dict(grouped.values())


@task
@tracked
def rebuild_index(run: TaskRun) -> int:
    """Rebuild every configured search backend, model by model, like ``update_index``.

    Objects are read ``WAGTAIL_TASKS_SEARCH_BATCH_SIZE`` at a time by keyset pagination, so a
    worker's memory does not grow with the size of the site; progress counts objects.
    """
    size = conf.get("WAGTAIL_TASKS_SEARCH_BATCH_SIZE")
    names = list(get_app_config().get_search_backend_config().keys())
    plans = []
    total = 0
    for name in names:
        backend = rebuild_backend(name)
        if not backend.rebuilder_class:
            continue
        grouped = group_models_by_index(backend)
        plans.append((name, backend, grouped))
        total += sum(model.get_indexed_objects().count() for ms in grouped.values() for model in ms)
    run.progress(0, total, message="Rebuilding the search index", force=True)
    done = 0
    for name, backend, grouped in plans:
        for index, index_models in grouped.items():
            rebuilder = backend.rebuilder_class(index)
            index = rebuilder.start()
            for model in index_models:
                index.add_model(model)
            for model in index_models:
                label = model._meta.label
                queryset = model.get_indexed_objects()
                for chunk in id_chunks(queryset, size):
                    objects = list(queryset.filter(pk__in=chunk).order_by("pk"))
                    index.add_items(model, objects)
                    done += len(objects)
                    run.progress(done, total, message=f"{name}: {label}")
            rebuilder.finish()
    run.progress(done, total, message=f"{done} objects indexed", force=True)
    return done
