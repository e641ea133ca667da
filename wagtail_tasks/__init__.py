"""Background tasks for Wagtail publishing work, through Django's task API."""

__version__ = "0.1.0"
