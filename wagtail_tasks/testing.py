"""Helpers for testing a site that uses wagtail_tasks.

Add a dummy backend next to your usual ones in the test settings::

    TASKS = {
        "default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"},
        "dummy": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"},
    }

(``django.tasks.backends.dummy.DummyBackend`` on Django 6), then::

    from wagtail_tasks.testing import enqueued, route_all_to, run_enqueued

    def test_publish_notifies(article, dummy_tasks):      # the pytest fixture below
        with route_all_to("dummy"):
            publish(article)
        assert [r.kind for r in enqueued()] == ["notification"]
        run_enqueued()                                     # runs it, and what it enqueued
        assert len(mail.outbox) == 3

To use the fixture, import it in your ``conftest.py``
(``from wagtail_tasks.testing import dummy_tasks  # noqa: F401``) or list
``"wagtail_tasks.testing"`` in ``pytest_plugins``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from wagtail_tasks import conf
from wagtail_tasks.task_api import DUMMY_BACKEND, IMMEDIATE_BACKEND, task_backends

try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional
    pytest = None  # type: ignore[assignment]

__all__ = [
    "EnqueuedTask",
    "clear_enqueued",
    "dummy_alias",
    "dummy_tasks",
    "enqueued",
    "route_all_to",
    "run_enqueued",
]


def _alias_of(backend_path: str, what: str) -> str:
    for alias, options in (getattr(settings, "TASKS", {}) or {}).items():
        if options.get("BACKEND") == backend_path:
            return alias
    raise ImproperlyConfigured(f"No {what} backend in TASKS: add one ({backend_path!r}).")


def dummy_alias() -> str:
    """The first ``TASKS`` alias whose backend is the task API's dummy backend."""
    return _alias_of(DUMMY_BACKEND, "dummy")


@dataclass(frozen=True)
class EnqueuedTask:
    """One task the dummy backend holds, with its tracking row's kind."""

    result: Any  # the backend's TaskResult
    kind: str  # the tracking row's kind ("" for a task that is not tracked)
    record_id: int | None  # the tracking row's id, the task's first argument

    @property
    def args(self) -> list[Any]:
        return list(self.result.args)

    @property
    def pending(self) -> bool:
        return self.result.status.name == "READY"


def _describe(result: Any) -> EnqueuedTask:
    from wagtail_tasks.models import TaskRecord

    record_id = result.args[0] if result.args and isinstance(result.args[0], int) else None
    kind = ""
    if record_id is not None:
        kind = TaskRecord.objects.filter(pk=record_id).values_list("kind", flat=True).first() or ""
    return EnqueuedTask(result=result, kind=kind, record_id=record_id)


def enqueued(kind: str | None = None, alias: str | None = None, pending: bool = False) -> list:
    """What was enqueued on the dummy backend, oldest first: :class:`EnqueuedTask` values,
    of one kind of work if ``kind`` is given (e.g. ``"notification"``, ``"notification.send"``),
    only those not run yet by :func:`run_enqueued` if ``pending``."""
    backend = task_backends[alias or dummy_alias()]
    items = [_describe(result) for result in backend.results]
    return [i for i in items if (kind is None or i.kind == kind) and (i.pending or not pending)]


def clear_enqueued(alias: str | None = None) -> None:
    """Forget everything the dummy backend holds (it lives as long as the process)."""
    task_backends[alias or dummy_alias()].clear()


def run_enqueued(alias: str | None = None, max_rounds: int = 100) -> int:
    """Run every pending task of the dummy backend now, in this process, and then what those
    tasks enqueued, until nothing is pending. Returns how many ran.

    Inside a test transaction the enqueues after commit that the tasks make are run at once
    (as ``captureOnCommitCallbacks(execute=True)`` does). A task that raises is marked FAILED
    on the backend (its tracking row says why) and the others still run.
    """
    from django.test import TestCase

    backend = task_backends[alias or dummy_alias()]
    ran = 0
    for _ in range(max_rounds):
        pending = [r for r in backend.results if r.status.name == "READY"]
        if not pending:
            return ran
        for result in pending:
            status = type(result.status)
            object.__setattr__(result, "status", status.RUNNING)
            try:
                with TestCase.captureOnCommitCallbacks(execute=True):
                    result.task.call(*result.args, **result.kwargs)
            except Exception:
                object.__setattr__(result, "status", status.FAILED)
            else:
                object.__setattr__(result, "status", status.SUCCESSFUL)
            ran += 1
    raise RuntimeError(f"Tasks still pending after {max_rounds} rounds: do they enqueue forever?")


@contextmanager
def route_all_to(alias: str = "dummy", queue: str = "default") -> Iterator[str]:
    """Send every group's work to one ``TASKS`` alias (``"dummy"``, ``"immediate"`` or any
    configured alias), whatever ``WAGTAIL_TASKS`` and the sites' settings say.

    ``"dummy"`` and ``"immediate"`` mean the first alias with that backend if there is no
    alias of that name."""
    tasks = getattr(settings, "TASKS", {}) or {}
    if alias not in tasks:
        if alias == "dummy":
            alias = dummy_alias()
        elif alias == "immediate":
            alias = _alias_of(IMMEDIATE_BACKEND, "immediate")
        else:
            raise ImproperlyConfigured(f"{alias!r} is not a TASKS alias.")
    route = conf.Route(backend=alias, queue=queue)
    with mock.patch.object(conf, "route_for", lambda group, site=None: route):
        yield alias


if pytest is not None:

    @pytest.fixture
    def dummy_tasks() -> Iterator[str]:
        """Routes all work to the dummy backend, emptied before and after the test; yields
        its alias. Use :func:`enqueued` and :func:`run_enqueued` in the test."""
        alias = dummy_alias()
        clear_enqueued(alias)
        with route_all_to(alias):
            yield alias
        clear_enqueued(alias)
