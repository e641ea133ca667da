"""The queued email: a message's content, kept in our table until a worker has sent it."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class QueuedEmail(models.Model):
    """One message waiting for its send task. Removed once sent; its tracking row stays.

    Addresses and bodies are personal data, so they live here and the task gets only this
    row's id. Contents too large for a row are files in the private storage
    (:mod:`wagtail_tasks.mail.storage`) named in the payload.
    """

    # Bookkeeping, not content: Wagtail's reference index skips it.
    wagtail_reference_index_ignore = True

    payload = models.JSONField(_("message"))
    # The MAILERS alias of the backend the worker sends with (Django 6.1+); blank: the setting.
    mailer = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("queued email")
        verbose_name_plural = _("queued emails")

    def __str__(self) -> str:
        return f"queued email #{self.pk}"
