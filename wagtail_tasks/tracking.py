"""The one enqueue path, and the API that task bodies use to report on their tracking row.

Every piece of background work in wagtail_tasks goes through :func:`enqueue`:

1. a ``TaskRecord`` row is created (QUEUED) inside the caller's transaction;
2. after that transaction commits, the task is enqueued on the backend chosen for its group,
   with the record's id and other ids as its only arguments;
3. the task body, wrapped by :func:`tracked`, moves the record through RUNNING to a finished
   status and reports progress on it.
"""

from __future__ import annotations

import functools
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Concatenate, NoReturn, ParamSpec, TypeVar

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from wagtail_tasks import conf
from wagtail_tasks.models import FINISHED_STATUSES, TaskRecord, TaskStatus, target_content_type
from wagtail_tasks.task_api import TaskResultStatus, task_backends

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# JSON-safe argument types: enqueued arguments are ids and plain values, never instances.
Arg = int | str | float | bool | None | list[Any]


def enqueue(
    task: Any,
    *args: Arg,
    kind: str,
    group: str,
    target: models.Model | None = None,
    site: Any = None,
    requested_by: Any = None,
    parent: TaskRecord | None = None,
    total: int | None = None,
) -> TaskRecord:
    """Create a tracking row now and enqueue ``task(record.pk, *args)`` after commit.

    ``task`` must be wrapped with :func:`tracked`. ``group`` picks the backend, queue and
    priority from ``WAGTAIL_TASKS`` (see :mod:`wagtail_tasks.conf`).
    """
    route = conf.route_for(group, site=site)
    record = TaskRecord.objects.create(
        kind=kind,
        parent=parent,
        target_content_type=target_content_type(target) if target else None,
        target_object_id=str(target.pk) if target else "",
        target_repr=str(target)[:255] if target else "",
        site=site,
        requested_by=requested_by if getattr(requested_by, "pk", None) else None,
        backend_alias=route.backend,
        queue_name=route.queue,
        progress_total=total,
        task_path=task.module_path,
        group=group,
        args=list(args),
    )
    transaction.on_commit(
        functools.partial(send_to_backend, record.pk, task, args, route), robust=True
    )
    return record


RETRYABLE_STATUSES = (TaskStatus.FAILED,)


def requeue(record: TaskRecord, run_after: datetime | None = None) -> bool:
    """Enqueue a failed row's task again, with the same arguments, after commit.

    The row goes back to QUEUED on the route its group has now (the configuration may have
    changed since). Its task must be idempotent, as every tracked task is: whatever the first
    attempt finished is not done twice. ``run_after`` defers it where the backend
    ``supports_defer``; elsewhere it is enqueued at once. Returns False, doing nothing, if the
    row is not failed (another retry got there first) or has no task to run.
    """
    return _enqueue_again(record, RETRYABLE_STATUSES, run_after)


def _enqueue_again(
    record: TaskRecord,
    from_statuses: Sequence[str],
    run_after: datetime | None,
    message: str = "",
    error: str = "",
) -> bool:
    """Put a row back to QUEUED (only from ``from_statuses``) and enqueue its task after commit."""
    if not record.task_path:
        return False
    route = conf.route_for(record.group, site=record.site_id)
    updated = TaskRecord.objects.filter(pk=record.pk, status__in=from_statuses).update(
        status=TaskStatus.QUEUED,
        error=error,
        message=message[:255],
        finished_at=None,
        backend_alias=route.backend,
        queue_name=route.queue,
        # Not on the backend yet: if this process dies before the enqueue after commit,
        # recover_stuck() sees a QUEUED row that never got there (see lost_in_the_queue).
        enqueued_at=None,
        heartbeat_at=timezone.now(),
    )
    if not updated:
        return False
    record.refresh_from_db()
    task = import_string(record.task_path)
    transaction.on_commit(
        functools.partial(send_to_backend, record.pk, task, record.args, route, run_after),
        robust=True,
    )
    return True


def send_to_backend(
    record_id: int,
    task: Any,
    args: Sequence[Arg],
    route: conf.Route,
    run_after: datetime | None = None,
) -> None:
    """Hand one tracked task to its backend. Runs after commit; never raises.

    A failure to enqueue (backend down, bad configuration) is written on the tracking row, so
    the work is visible and can be retried; the request that published is not broken.
    """
    try:
        backend = task_backends[route.backend]
        options: dict[str, Any] = {"backend": route.backend, "queue_name": route.queue}
        if route.priority and backend.supports_priority:
            options["priority"] = route.priority
        if run_after is not None and backend.supports_defer:
            options["run_after"] = run_after
        result = task.using(**options).enqueue(record_id, *args)
    except Exception as exc:
        logger.exception("Could not enqueue %s (tracking row %s)", task, record_id)
        TaskRecord.objects.filter(pk=record_id, status=TaskStatus.QUEUED).update(
            status=TaskStatus.FAILED,
            error=f"Could not enqueue on backend {route.backend!r}: {describe(exc)}",
            finished_at=timezone.now(),
        )
        return
    # Only these fields: with an in-process backend the task has already run and written
    # its status.
    TaskRecord.objects.filter(pk=record_id).update(
        backend_task_id=str(result.id), enqueued_at=timezone.now()
    )


class TaskCancelled(Exception):
    """Raised inside a tracked task to stop it and mark its row CANCELLED, not FAILED."""


class RetryLater(Exception):
    """Raised inside a tracked task (see :meth:`TaskRun.retry_later`) to run it again later.

    The row goes back to QUEUED with ``reason`` as its message and the task is enqueued
    again with ``run_after`` now + ``delay`` seconds, on a backend that ``supports_defer``.
    A backend that cannot defer would run it again at once (with the in-process backend,
    inside this very call): there the row FAILS instead, with the reason, and
    :func:`requeue` retries it when a person decides to. Never a busy loop, never lost.
    """

    def __init__(self, delay: float, reason: str, error: str = "") -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason
        self.error = error


class TaskRun:
    """What a tracked task body gets: its tracking row and throttled progress reporting."""

    def __init__(self, record: TaskRecord) -> None:
        self.record = record
        self.finish_later = False
        self._last_write = float("-inf")  # the first report is always written
        self._after_finish: list[Callable[[], None]] = []

    @property
    def id(self) -> int:
        return self.record.pk

    def progress(
        self, done: int, total: int | None = None, message: str | None = None, force: bool = False
    ) -> None:
        """Report progress. Writes at most once per ``WAGTAIL_TASKS_PROGRESS_INTERVAL``."""
        self.record.progress_done = done
        if total is not None:
            self.record.progress_total = total
        if message is not None:
            self.record.message = message[:255]
        now = time.monotonic()
        if not force and now - self._last_write < conf.get("WAGTAIL_TASKS_PROGRESS_INTERVAL"):
            return
        self._last_write = now
        TaskRecord.objects.filter(pk=self.record.pk).update(
            progress_done=self.record.progress_done,
            progress_total=self.record.progress_total,
            message=self.record.message,
            heartbeat_at=timezone.now(),
        )

    def raise_if_cancelled(self) -> None:
        """Stop here (:class:`TaskCancelled`) if someone cancelled this row meanwhile.

        Cancelling finishes the row at once (``finish(..., CANCELLED)``); a long task calls
        this between chunks so that it stops working, and tidies up, soon after.
        """
        status = TaskRecord.objects.filter(pk=self.record.pk).values_list("status", flat=True)
        if status.first() == TaskStatus.CANCELLED:
            raise TaskCancelled(self.record.message or "Cancelled")

    def after_finish(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once this row has its final status, whether it failed or not."""
        self._after_finish.append(callback)

    def run_after_finish(self) -> None:
        for callback in self._after_finish:
            try:
                callback()
            except Exception:
                logger.exception("after_finish callback of tracking row %s failed", self.id)

    @property
    def attempt(self) -> int:
        """This run's number: 1 for the first attempt, 2 for the first retry, ..."""
        return self.record.attempts

    def backoff(self, first_delay: float) -> float:
        """Seconds to wait after this attempt: ``first_delay``, doubled for each one before."""
        return float(first_delay) * 2 ** (self.attempt - 1)

    def retry_later(self, delay: float, reason: str, error: str = "") -> NoReturn:
        """Stop now and run this task again in ``delay`` seconds (see :class:`RetryLater`).

        The caller decides whether attempts are left (:attr:`attempt`) and what the delay is.
        """
        raise RetryLater(delay, reason, error)

    def keep_running(self, message: str = "") -> None:
        """Leave the row RUNNING when the body returns: other tasks will finish it."""
        self.finish_later = True
        if message:
            self.record.message = message[:255]


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def tracked(func: Callable[Concatenate[TaskRun, P], R]) -> Callable[..., R | None]:
    """Wrap a task body so that it runs against its tracking row.

    The task's first argument becomes the tracking row's id. A row that is already finished
    (or gone) is not run again: redelivery of a finished task does nothing.
    """

    @functools.wraps(func)
    def wrapper(record_id: int, *args: P.args, **kwargs: P.kwargs) -> R | None:
        record = TaskRecord.objects.filter(pk=record_id).first()
        if record is None:
            logger.warning("Tracking row %s is gone; not running %s", record_id, func.__name__)
            return None
        if record.status in FINISHED_STATUSES:
            logger.info("Tracking row %s is %s; not running again", record_id, record.status)
            return None
        now = timezone.now()
        TaskRecord.objects.filter(pk=record_id).update(
            status=TaskStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            error="",
        )
        record.refresh_from_db()
        run = TaskRun(record)
        try:
            value = func(run, *args, **kwargs)
        except TaskCancelled as exc:
            finish(record_id, TaskStatus.CANCELLED, message=str(exc), run=run)
            run.run_after_finish()
            return None
        except RetryLater as retry:
            if not reschedule(run, retry):
                run.run_after_finish()
            return None
        except Exception as exc:
            finish(
                record_id,
                TaskStatus.FAILED,
                message=str(exc)[:255],
                error=f"{describe(exc)}\n\n{traceback.format_exc()}",
                run=run,
            )
            run.run_after_finish()
            raise
        if not run.finish_later:
            finish(record_id, TaskStatus.SUCCEEDED, message=run.record.message, run=run)
        run.run_after_finish()
        return value

    return wrapper


def reschedule(run: TaskRun, retry: RetryLater) -> bool:
    """Requeue a running row ``retry.delay`` seconds from now; False if it failed instead."""
    record = run.record
    route = conf.route_for(record.group, site=record.site_id)
    if task_backends[route.backend].supports_defer:
        run_after = timezone.now() + timedelta(seconds=retry.delay)
        message = f"Attempt {run.attempt} failed, retrying at {run_after:%H:%M:%S}: {retry.reason}"
        if _enqueue_again(record, [TaskStatus.RUNNING], run_after, message, retry.error):
            return True
    else:
        logger.warning(
            "Backend %r cannot defer; tracking row %s fails instead of retrying at once",
            route.backend,
            record.pk,
        )
    finish(
        record.pk,
        TaskStatus.FAILED,
        message=f"Not retried automatically (backend {route.backend!r} cannot defer): "
        f"{retry.reason}",
        error=retry.error or retry.reason,
        run=run,
    )
    return False


def finish(
    record_id: int,
    status: TaskStatus,
    message: str = "",
    error: str = "",
    run: TaskRun | None = None,
) -> bool:
    """Move a row to a finished status, once. Returns False if it had already finished."""
    fields: dict[str, Any] = {
        "status": status,
        "message": message[:255],
        "error": error,
        "finished_at": timezone.now(),
        "heartbeat_at": timezone.now(),
    }
    if run is not None:
        fields["progress_done"] = run.record.progress_done
        fields["progress_total"] = run.record.progress_total
    updated = (
        TaskRecord.objects.filter(pk=record_id)
        .exclude(status__in=FINISHED_STATUSES)
        .update(**fields)
    )
    return bool(updated)


# What to tidy up before stuck work of a kind runs again (for example the deliveries a dead
# worker held): kind -> callable(record). Registered with @on_recovery(kind).
_recovery_handlers: dict[str, Callable[[TaskRecord], None]] = {}


def on_recovery(kind: str) -> Callable[[Callable[[TaskRecord], None]], Callable]:
    def register(handler: Callable[[TaskRecord], None]) -> Callable[[TaskRecord], None]:
        _recovery_handlers[kind] = handler
        return handler

    return register


@dataclass
class Recovery:
    requeued: list[int] = field(default_factory=list)  # stuck RUNNING rows, enqueued again
    failed: list[int] = field(default_factory=list)  # stuck rows whose worker died too often
    resent: list[int] = field(default_factory=list)  # QUEUED rows whose job was lost


def recover_stuck(now: datetime | None = None) -> Recovery:
    """Fail, visibly, the work whose worker stopped sending heartbeats, and enqueue it again.

    Stuck means RUNNING with no heartbeat for ``WAGTAIL_TASKS_STUCK_AFTER`` seconds (see
    ``TaskRecordQuerySet.stuck``). Each such row is marked FAILED with the reason, its kind's
    recovery handler runs, and it is requeued unless its worker has now died
    ``WAGTAIL_TASKS_MAX_CRASHES`` times; then it stays FAILED for a person to look at. Only
    deaths count: a planned retry (``run.retry_later``, a mail server that was down) does not
    use up the work's chances of being recovered.
    Tasks are idempotent, so a worker that was only slow, not dead, does no harm.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=conf.get("WAGTAIL_TASKS_STUCK_AFTER"))
    recovery = Recovery()
    for record in TaskRecord.objects.stuck(cutoff).order_by("pk"):
        last_sign = record.heartbeat_at or record.started_at
        error = (
            "The worker stopped responding: no heartbeat since "
            f"{last_sign:%Y-%m-%d %H:%M:%S %Z} (attempt {record.attempts}, "
            f"worker death {record.crashes + 1})."
        )
        # One transaction per row: its new run is enqueued (on commit) only once the handler
        # has tidied up after the dead one.
        with transaction.atomic():
            # Only if still stuck: a heartbeat that arrived meanwhile wins.
            updated = TaskRecord.objects.filter(
                pk=record.pk, status=TaskStatus.RUNNING, heartbeat_at=record.heartbeat_at
            ).update(
                status=TaskStatus.FAILED,
                error=error,
                message=error[:255],
                finished_at=now,
                crashes=F("crashes") + 1,
            )
            if not updated:
                continue
            record.refresh_from_db()
            logger.warning("Tracking row %s (%s) is stuck: %s", record.pk, record.kind, error)
            again = record.crashes < conf.get("WAGTAIL_TASKS_MAX_CRASHES") and requeue(record)
            (recovery.requeued if again else recovery.failed).append(record.pk)
            if handler := _recovery_handlers.get(record.kind):
                try:
                    with transaction.atomic():
                        handler(record)
                except Exception:
                    logger.exception("Recovery handler of tracking row %s failed", record.pk)
    lost = TaskRecord.objects.lost_in_the_queue(cutoff).exclude(pk__in=recovery.requeued)
    for record in lost.order_by("pk"):
        if never_started_by_its_backend(record):
            logger.warning(
                "Tracking row %s (%s) was lost on its way to a worker", record.pk, record.kind
            )
            send_to_backend(
                record.pk,
                import_string(record.task_path),
                record.args,
                conf.route_for(record.group, site=record.site_id),
            )
            recovery.resent.append(record.pk)
    return recovery


def never_started_by_its_backend(record: TaskRecord) -> bool:
    """Whether a QUEUED row's job is gone: never enqueued, or taken by a worker that died
    before the task body began (the backend reports it running or finished, not waiting).

    A backend that cannot report results (``supports_get_result``) cannot tell a long queue
    from a lost job: its enqueued rows are left alone.
    """
    if record.enqueued_at is None:
        return True
    try:
        backend = task_backends[record.backend_alias]
    except Exception:
        return True  # the alias is gone: enqueue on the current route
    if not backend.supports_get_result:
        return False
    try:
        result = backend.get_result(record.backend_task_id)
    except Exception:
        return True  # the backend does not know the job (expired, or never stored)
    return result.status != TaskResultStatus.READY
