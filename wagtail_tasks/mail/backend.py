"""The email backend that hands every message to a task, and the backend the task sends with."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.utils.module_loading import import_string

from wagtail_tasks import conf
from wagtail_tasks.mail import serialization, storage
from wagtail_tasks.mail.serialization import MessageNotSerializable
from wagtail_tasks.mail.tasks import queue_message

logger = logging.getLogger(__name__)

# Options that configure a connection to a mail server: they belong to the inner backend's
# settings, where the worker can read them, never to a task or a row.
CONNECTION_OPTIONS = frozenset(
    {"host", "port", "username", "password", "use_tls", "use_ssl", "timeout"}
    | {"ssl_keyfile", "ssl_certfile"}
)


class TaskEmailBackend(BaseEmailBackend):
    """Queue each message as a tracked task; a worker sends it with the inner backend.

    ``send_messages`` serialises every message first (a message that cannot be serialised
    raises :class:`MessageNotSerializable` there, and nothing of the call is queued), then
    stores each in a :class:`QueuedEmail` row and enqueues one task per message, after the
    caller's transaction commits. It returns the number of messages queued.

    ``mailer`` (Django 6.1+ ``MAILERS`` OPTIONS) names the MAILERS alias the worker sends
    with; without it the worker uses ``WAGTAIL_TASKS_MAIL_BACKEND``.
    """

    def __init__(self, fail_silently: bool = False, mailer: str | None = None, **kwargs: Any):
        # Django 5.2's send_mail() passes username/password as None when not given.
        given = sorted(
            name for name in CONNECTION_OPTIONS & set(kwargs) if kwargs[name] is not None
        )
        if given:
            raise TypeError(
                f"TaskEmailBackend does not take connection options ({', '.join(given)}): "
                "the worker connects with the inner backend's own settings."
            )
        for name in CONNECTION_OPTIONS:
            kwargs.pop(name, None)
        super().__init__(**kwargs)
        self.fail_silently = fail_silently
        self.mailer = mailer or ""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if not email_messages:
            return 0
        limit = conf.get("WAGTAIL_TASKS_MAIL_INLINE_LIMIT")
        payloads = []
        stored: list[str] = []  # removed again if this call queues nothing

        def store(content: bytes) -> str:
            stored.append(storage.save(content))
            return stored[-1]

        try:
            for message in email_messages:
                if not message.recipients():
                    continue  # as Django's backends do: nobody to send to
                kept = len(stored)
                try:
                    payloads.append(serialization.serialize(message, store, limit))
                except MessageNotSerializable:
                    if not self.fail_silently:
                        raise
                    storage.delete(stored[kept:])
                    del stored[kept:]
                    logger.exception("Email not queued: it cannot be serialised")
        except BaseException:
            storage.delete(stored)
            raise
        with transaction.atomic():
            for payload in payloads:
                queue_message(payload, self.mailer)
        return len(payloads)


def is_task_backend(connection: Any) -> bool:
    return isinstance(connection, TaskEmailBackend)


def default_connection() -> Any:
    """The site's default email connection: ``mailers.default`` on Django 6.1+ with MAILERS."""
    mailers = getattr(mail, "mailers", None)
    if mailers is not None and mailers._is_configured:
        return mailers.default
    return mail.get_connection(fail_silently=False)


def inner_connection(mailer: str = "") -> Any:
    """The backend that really sends: a MAILERS alias (Django 6.1+), else the setting."""
    if mailer:
        mailers = getattr(mail, "mailers", None)
        if mailers is None:
            raise ImproperlyConfigured(
                f"TaskEmailBackend's 'mailer' option ({mailer!r}) names a MAILERS alias, "
                "which needs Django 6.1 or later; use WAGTAIL_TASKS_MAIL_BACKEND."
            )
        connection = mailers[mailer]
    else:
        connection = import_string(conf.get("WAGTAIL_TASKS_MAIL_BACKEND"))(fail_silently=False)
    if is_task_backend(connection):
        raise ValueError(
            "The inner backend of TaskEmailBackend is TaskEmailBackend again: every message "
            "would be queued for ever. Set WAGTAIL_TASKS_MAIL_BACKEND (or its 'mailer' "
            "option) to the backend that sends."
        )
    return connection


def sending_connection() -> Any:
    """A connection for code that already runs in a task (our subscriber notifications).

    When the site's backend is TaskEmailBackend, its inner backend: sending from a task
    must not queue every email as another task.
    """
    connection = default_connection()
    if is_task_backend(connection):
        return inner_connection(connection.mailer)
    return connection
