"""Small tracked tasks that exercise the tracking API in tests."""

from wagtail_tasks.task_api import task
from wagtail_tasks.tracking import TaskCancelled, TaskRun, tracked


@task
@tracked
def count_to(run: TaskRun, total: int) -> int:
    for done in range(1, total + 1):
        run.progress(done, total=total)
    return total


@task
@tracked
def explode(run: TaskRun, message: str) -> None:
    run.progress(1, total=2, force=True)
    raise ValueError(message)


@task
@tracked
def give_up(run: TaskRun) -> None:
    raise TaskCancelled("Nothing left to do.")


@task
@tracked
def flaky(run: TaskRun, succeed_on_attempt: int) -> int:
    """Asks to be retried in 30 s until its attempt number reaches ``succeed_on_attempt``."""
    if run.attempt < succeed_on_attempt:
        run.retry_later(30, f"not yet (attempt {run.attempt})", error="the last error")
    return run.attempt
