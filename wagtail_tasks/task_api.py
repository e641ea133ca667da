"""The one place that knows where Django's task API comes from.

Django 6 ships ``django.tasks``; on Django 5.2 the ``django-tasks`` backport provides the
same API. Everything else in wagtail_tasks imports the task API from here.
"""

from importlib.util import find_spec

if find_spec("django.tasks"):  # Django 6+
    from django.tasks import TaskResultStatus, task, task_backends
    from django.tasks.exceptions import InvalidTask as InvalidTaskError
    from django.tasks.exceptions import InvalidTaskBackend as InvalidTaskBackendError

    BUILTIN = True
    IMMEDIATE_BACKEND = "django.tasks.backends.immediate.ImmediateBackend"
    DUMMY_BACKEND = "django.tasks.backends.dummy.DummyBackend"
else:  # Django 5.2 with the backport
    from django_tasks import TaskResultStatus, task, task_backends  # type: ignore[no-redef]
    from django_tasks.exceptions import (  # type: ignore[no-redef]
        InvalidTaskBackendError,
        InvalidTaskError,
    )

    BUILTIN = False
    IMMEDIATE_BACKEND = "django_tasks.backends.immediate.ImmediateBackend"
    DUMMY_BACKEND = "django_tasks.backends.dummy.DummyBackend"

DATABASE_BACKEND = "django_tasks_db.DatabaseBackend"
RQ_BACKEND = "django_tasks_rq.RQBackend"

__all__ = [
    "BUILTIN",
    "DATABASE_BACKEND",
    "DUMMY_BACKEND",
    "IMMEDIATE_BACKEND",
    "RQ_BACKEND",
    "InvalidTaskBackendError",
    "InvalidTaskError",
    "TaskResultStatus",
    "task",
    "task_backends",
]
