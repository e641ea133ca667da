"""Private file storage: what our tasks write for later (mail attachments, report files).

Never public media: either a ``STORAGES`` alias the site names, or a folder *beside*
``MEDIA_ROOT`` (not in it) with no URL, so the files are only ever served through views
that check permissions.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, Storage, storages

from wagtail_tasks import conf

PRIVATE_FOLDER = "wagtail_tasks_private"


def in_media_root(location: str | Path) -> bool:
    """Whether a folder is inside ``MEDIA_ROOT``, where the web server serves it to anyone."""
    if not settings.MEDIA_ROOT:
        return False
    return Path(location).resolve().is_relative_to(Path(settings.MEDIA_ROOT).resolve())


def private_storage(setting: str, folder: str) -> Storage:
    """The ``STORAGES`` alias that ``setting`` names, else ``wagtail_tasks_private/<folder>``
    beside ``MEDIA_ROOT``."""
    alias = conf.get(setting)
    if alias:
        return storages[alias]
    if not settings.MEDIA_ROOT:
        raise ImproperlyConfigured(
            f"wagtail_tasks needs a private storage for its {folder} files: set {setting} to a "
            "STORAGES alias, or MEDIA_ROOT (the default folder is beside it)."
        )
    location = Path(settings.MEDIA_ROOT).resolve().parent / PRIVATE_FOLDER / folder
    return FileSystemStorage(location=location, base_url=None)
