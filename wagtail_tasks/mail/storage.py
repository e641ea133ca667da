"""Where attachments too large for a database row wait for their send task: never public media."""

from __future__ import annotations

import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import Storage

from wagtail_tasks.storage import private_storage


def mail_storage() -> Storage:
    """The ``WAGTAIL_TASKS_MAIL_STORAGE`` alias of ``STORAGES``, else a private folder
    (``wagtail_tasks_private/mail`` beside ``MEDIA_ROOT``): the files are never served."""
    return private_storage("WAGTAIL_TASKS_MAIL_STORAGE", "mail")


def save(content: bytes) -> str:
    """Store ``content`` under a name nobody can guess; return the name."""
    return mail_storage().save(f"{uuid.uuid4().hex}.bin", ContentFile(content))


def load(name: str) -> bytes:
    with mail_storage().open(name, "rb") as file:
        return file.read()


def delete(names: list[str]) -> None:
    storage = mail_storage()
    for name in names:
        storage.delete(name)
