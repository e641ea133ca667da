"""The task email backend: ``EMAIL_BACKEND = "wagtail_tasks.mail.TaskEmailBackend"``.

Loaded lazily: Django imports the backend by name when a connection is opened, after the
app registry is ready; importing the models here would be too early.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "TaskEmailBackend":
        from wagtail_tasks.mail.backend import TaskEmailBackend

        return TaskEmailBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
