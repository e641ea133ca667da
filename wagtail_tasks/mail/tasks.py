"""The send task of the task email backend: one message per task, retried when it is temporary."""

from __future__ import annotations

import logging
import smtplib
import traceback

from django.utils.translation import gettext_lazy as _

from wagtail_tasks import conf
from wagtail_tasks.kinds import register_kind
from wagtail_tasks.mail import serialization, storage
from wagtail_tasks.mail.models import QueuedEmail
from wagtail_tasks.task_api import task
from wagtail_tasks.tracking import TaskRun, describe, enqueue, tracked

logger = logging.getLogger(__name__)

KIND_EMAIL = register_kind("email", _("Email"))


def queue_message(payload: dict, mailer: str = "") -> QueuedEmail:
    """Store one serialised message and enqueue its send task after commit (ids only)."""
    queued = QueuedEmail.objects.create(payload=payload, mailer=mailer)
    enqueue(send_queued_email, queued.pk, kind=KIND_EMAIL, group=conf.EMAIL, total=1)
    return queued


def is_temporary(exc: BaseException) -> bool:
    """Would the same message go through later? 4xx answers and lost connections: yes.

    5xx answers (a refused recipient, a rejected message) and anything else (a malformed
    address, a bug) would fail the same way again.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError | TimeoutError)


@task
@tracked
def send_queued_email(run: TaskRun, queued_email_id: int) -> None:
    """Rebuild the message and send it with the inner backend; drop its payload once sent."""
    from wagtail_tasks.mail.backend import inner_connection  # it imports this module

    queued = QueuedEmail.objects.filter(pk=queued_email_id).first()
    if queued is None:  # sent by an earlier run, which removed it
        run.progress(1, 1, message="Already sent")
        return
    message = serialization.deserialize(queued.payload, storage.load)
    try:
        with inner_connection(queued.mailer) as connection:
            connection.send_messages([message])
    except Exception as exc:
        if is_temporary(exc) and run.attempt <= conf.get("WAGTAIL_TASKS_MAIL_RETRIES"):
            error = f"{describe(exc)}\n\n{traceback.format_exc()}"
            delay = run.backoff(conf.get("WAGTAIL_TASKS_MAIL_RETRY_DELAY"))
            run.retry_later(delay, describe(exc), error)
        raise
    files = serialization.stored_names(queued.payload)
    queued.delete()
    storage.delete(files)
    run.progress(1, 1, message="Sent")
