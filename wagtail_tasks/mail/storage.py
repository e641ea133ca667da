"""Where attachments too large for a database row wait for their send task: never public media."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages

from wagtail_tasks import conf

FOLDER = "wagtail_tasks_private/mail"


def mail_storage() -> Storage:
    """The ``WAGTAIL_TASKS_MAIL_STORAGE`` alias of ``STORAGES``, else a private folder.

    The default folder is ``wagtail_tasks_private/mail`` beside ``MEDIA_ROOT`` (not in it),
    with no URL: the files are never served.
    """
    alias = conf.get("WAGTAIL_TASKS_MAIL_STORAGE")
    if alias:
        return storages[alias]
    if not settings.MEDIA_ROOT:
        raise ImproperlyConfigured(
            "Large email attachments need a private storage: set WAGTAIL_TASKS_MAIL_STORAGE "
            "to a STORAGES alias, or MEDIA_ROOT (the default folder is beside it)."
        )
    location = Path(settings.MEDIA_ROOT).resolve().parent / FOLDER
    return FileSystemStorage(location=location, base_url=None)


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
