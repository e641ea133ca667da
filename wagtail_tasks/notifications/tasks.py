"""The notification tasks: fan a publication out to its subscribers, then send in batches.

Each task takes its tracking row's id first (see :func:`wagtail_tasks.tracking.tracked`) and
then ids only. Each can run twice: deliveries are unique per (notification, address) and are
claimed before they are sent, so a second run sends only what is still missing.
"""

from __future__ import annotations

import logging
import smtplib

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from wagtail_tasks import conf
from wagtail_tasks.kinds import register_kind
from wagtail_tasks.mail.tasks import is_temporary
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.notifications.emails import (
    MessageBuilder,
    confirmation_builder,
    notification_builder,
    open_connection,
)
from wagtail_tasks.notifications.models import (
    UNFINISHED_DELIVERY,
    Delivery,
    DeliveryStatus,
    Notification,
    Subscription,
    SubscriptionStatus,
    email_key,
)
from wagtail_tasks.task_api import task
from wagtail_tasks.tracking import (
    TaskCancelled,
    TaskRun,
    describe,
    enqueue,
    finish,
    on_recovery,
    tracked,
)

logger = logging.getLogger(__name__)

KIND_NOTIFY = register_kind("notification", _("Subscriber notification"))
KIND_SEND = register_kind("notification.send", _("Notification emails"))
KIND_CONFIRM = register_kind("subscription.confirm", _("Subscription confirmation"))


def live_page_or_cancel(notification: Notification):
    if notification.page_id is None:
        raise TaskCancelled("The page was deleted before its subscribers were notified.")
    page = notification.page.specific
    if not page.live:
        raise TaskCancelled("The page is no longer live; no emails were sent.")
    if page.get_view_restrictions().exists():
        raise TaskCancelled("The page is private (it has view restrictions); no emails were sent.")
    return page


def address_problem(email: str) -> str:
    """Why an address cannot be mailed, or '' if it can."""
    if not email or not email.strip():
        return "No email address."
    try:
        validate_email(email)
    except ValidationError:
        return f"Invalid email address: {email!r}."
    return ""


@task
@tracked
def fan_out_notification(run: TaskRun, notification_id: int) -> None:
    """Create one delivery per subscribed address and enqueue send tasks for them."""
    notification = Notification.objects.select_related("page").get(pk=notification_id)
    page = live_page_or_cancel(notification)
    # Render once with a stand-in subscriber, so that a broken template fails here, visibly,
    # before any delivery is created.
    builder = notification_builder(page)
    builder.build(Subscription(pk=0, page=page, email="subscriber@example.com"))

    subscriptions = Subscription.objects.confirmed().for_page(page).order_by("pk")
    run.progress(0, total=subscriptions.count(), message="Finding subscribers", force=True)
    page_size = conf.get("WAGTAIL_TASKS_FANOUT_PAGE_SIZE")
    last_pk = 0
    while True:
        # Keyset pagination: constant memory whatever the number of subscribers.
        rows = list(subscriptions.filter(pk__gt=last_pk).values_list("pk", "email")[:page_size])
        if not rows:
            break
        last_pk = rows[-1][0]
        with transaction.atomic():
            create_deliveries(notification, rows)
            enqueue_send_batches(notification, run.record)

    Notification.objects.filter(pk=notification.pk).update(fanned_out_at=timezone.now())
    run.keep_running()
    refresh_notification(notification.pk)


def create_deliveries(notification: Notification, rows: list[tuple[int, str]]) -> None:
    deliveries = []
    for subscription_id, email in rows:
        problem = address_problem(email)
        deliveries.append(
            Delivery(
                notification=notification,
                subscription_id=subscription_id,
                # Unusable addresses get a key of their own: each is recorded, none collide.
                email_key=f"invalid:{subscription_id}" if problem else email_key(email),
                status=DeliveryStatus.SKIPPED if problem else DeliveryStatus.PENDING,
                reason=problem,
            )
        )
    # The unique (notification, email_key) makes a second run, and a second subscription of
    # the same address (to a page and to its section), create nothing more.
    Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)


def enqueue_send_batches(notification: Notification, parent: TaskRecord) -> None:
    """Give every pending, unbatched delivery of the notification a send task.

    Called once per keyset page, so at most a page of ids is held (a list, not an iterator:
    on SQLite a cursor must not stay open over rows this loop updates).
    """
    batch_size = conf.get("WAGTAIL_TASKS_SEND_BATCH_SIZE")
    unbatched = list(
        Delivery.objects.filter(
            notification=notification, status=DeliveryStatus.PENDING, batch__isnull=True
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for start in range(0, len(unbatched), batch_size):
        chunk = unbatched[start : start + batch_size]
        record = enqueue(
            send_notification_batch,
            notification.pk,
            kind=KIND_SEND,
            group=conf.SENDING,
            target=notification.page,
            site=parent.site,
            parent=parent,
            total=len(chunk),
        )
        Delivery.objects.filter(pk__in=chunk).update(batch=record)


@task
@tracked
def send_notification_batch(run: TaskRun, notification_id: int) -> None:
    """Send this batch's deliveries over one SMTP connection, claiming them as it goes."""
    notification = Notification.objects.select_related("page", "record").get(pk=notification_id)
    # Recount the notification once this batch has its final status, success or failure.
    run.after_finish(lambda: refresh_notification(notification_id))
    batch = Delivery.objects.filter(batch_id=run.id)
    if notification.record and notification.record.status == TaskStatus.CANCELLED:
        skipped = batch.filter(status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.SKIPPED, reason="The notification was cancelled."
        )
        raise TaskCancelled(f"Notification cancelled; {skipped} emails skipped.")
    try:
        page = live_page_or_cancel(notification)
    except TaskCancelled as exc:
        batch.filter(status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.SKIPPED, reason=str(exc)
        )
        raise
    try:
        deferred = send_deliveries(run, notification_builder(page), batch)
    except Exception as exc:
        if not is_temporary(exc):
            raise
        retry_with_backoff(run, f"The mail server is unavailable: {describe(exc)}")
    if deferred:
        retry_with_backoff(run, f"{deferred} recipient(s) temporarily refused")


def retry_with_backoff(run: TaskRun, reason: str) -> None:
    """Run the batch again later, waiting twice as long each time, up to
    ``WAGTAIL_TASKS_SEND_RETRIES`` times; then fail visibly (its deliveries stay PENDING for a
    retry from the admin)."""
    if run.attempt > conf.get("WAGTAIL_TASKS_SEND_RETRIES"):
        raise RuntimeError(f"{reason}; gave up after {run.attempt} attempts.")
    run.retry_later(run.backoff(conf.get("WAGTAIL_TASKS_SEND_RETRY_DELAY")), reason)


def send_deliveries(run: TaskRun, builder: MessageBuilder, batch) -> int:
    """Send what is pending; return how many recipients were refused for now (4xx)."""
    pending = list(
        batch.filter(status=DeliveryStatus.PENDING).select_related("subscription").order_by("pk")
    )
    total = batch.count()
    done = total - len(pending)
    run.progress(done, total=total)
    if not pending:
        return 0
    ledger = DeliveryLedger()
    deferred = 0
    try:
        with open_connection() as connection:
            claim_size = conf.get("WAGTAIL_TASKS_CLAIM_SIZE")
            for start in range(0, len(pending), claim_size):
                chunk = pending[start : start + claim_size]
                # Claim them: another run of the same batch skips what this one holds.
                claimed = ledger.claim([delivery.pk for delivery in chunk])
                untried = set(claimed)
                try:
                    for delivery in chunk:
                        if delivery.pk in claimed:
                            untried.discard(delivery.pk)
                            if not send_one(connection, builder, delivery, ledger):
                                deferred += 1
                                continue
                        done += 1
                        run.progress(done)
                except BaseException:
                    # Give back what this run claimed and never tried: it was not sent.
                    for delivery_id in untried:
                        ledger.record(delivery_id, DeliveryStatus.PENDING)
                    raise
    finally:
        ledger.flush()
    return deferred


def send_one(connection, builder: MessageBuilder, delivery: Delivery, ledger) -> bool:
    """Send one delivery and record its outcome; False if it must wait for a later run."""
    subscription = delivery.subscription
    if subscription is None or subscription.status != SubscriptionStatus.CONFIRMED:
        ledger.record(
            delivery.pk, DeliveryStatus.SKIPPED, "Unsubscribed before the email was sent."
        )
        return
    if problem := address_problem(subscription.email):
        ledger.record(delivery.pk, DeliveryStatus.SKIPPED, problem)
        return
    try:
        message = builder.build(subscription)
        connection.send_messages([message])
    except smtplib.SMTPRecipientsRefused as exc:
        # Refused for this recipient only: record it and go on with the batch.
        answers = list(exc.recipients.values())
        codes = "; ".join(f"{code} {msg.decode(errors='replace')}" for code, msg in answers)
        if all(400 <= code < 500 for code, _ in answers):
            # Greylisting, a full mailbox ...: this one waits for the batch's next run.
            ledger.record(delivery.pk, DeliveryStatus.PENDING, f"Refused for now: {codes}")
            return False
        ledger.record(delivery.pk, DeliveryStatus.FAILED, f"Recipient refused: {codes}")
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600 and not isinstance(exc, smtplib.SMTPSenderRefused):
            reason = f"Rejected: {exc.smtp_code} {exc.smtp_error!r}"
            ledger.record(delivery.pk, DeliveryStatus.FAILED, reason)
        else:
            # Temporary, or the sender is refused: nothing in this batch can go now.
            ledger.record(delivery.pk, DeliveryStatus.PENDING)
            raise
    except Exception:
        # Connection lost, template error ...: put it back; the batch retries or fails.
        ledger.record(delivery.pk, DeliveryStatus.PENDING)
        raise
    else:
        ledger.record(delivery.pk, DeliveryStatus.SENT)
    return True


UNKNOWN_OUTCOME = (
    "Not known whether this email was sent: the worker stopped while sending it. It is not "
    "sent again automatically, so that nobody gets it twice; retry failed deliveries to send it."
)


@on_recovery(KIND_SEND)
def release_deliveries_of_a_dead_batch(record: TaskRecord) -> None:
    """At most once: what a dead worker held may have reached the mail server, so it fails
    with the reason instead of being sent again. What it had not claimed stays PENDING, and
    the batch's next run sends it."""
    Delivery.objects.filter(batch_id=record.pk, status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.FAILED, reason=UNKNOWN_OUTCOME
    )
    notification_id = Delivery.objects.filter(batch_id=record.pk).values("notification_id")[:1]
    for notification in Notification.objects.filter(pk__in=notification_id):
        refresh_notification(notification.pk)


class DeliveryLedger:
    """Writes the states of one batch's deliveries: one short transaction per claim.

    A claim is ``WAGTAIL_TASKS_CLAIM_SIZE`` deliveries (10): a worker that dies leaves at most
    that many SENDING (maybe sent, never sent again). A claim of 1 makes that one email, for
    about 0.3 ms more SQL per email (see benchmarks/README.md).

    Outcomes are kept in memory and written in the same transaction as the next claim, in
    plain SQL statements (measured in benchmarks/delivery_rate.py: an ORM update and a commit
    per email cost about as much as rendering it). A crash between sending and writing leaves
    deliveries SENDING, never PENDING: nothing that may have reached the mail server is sent
    again by accident.
    """

    def __init__(self) -> None:
        table = connection.ops.quote_name(Delivery._meta.db_table)
        self.claim_sql = (
            f"UPDATE {table} SET status = %s, attempts = attempts + 1 WHERE status = %s AND id"
        )
        self.outcome_sql = (
            f"UPDATE {table} SET status = %s, reason = %s, sent_at = %s WHERE id = %s"
        )
        # UPDATE ... RETURNING tells in one statement which rows this run claimed.
        # MySQL and MariaDB lack it: there, one UPDATE per row and its rowcount.
        self.returning = connection.vendor in ("postgresql", "sqlite")
        self.outcomes: list[list[object]] = []

    def record(self, delivery_id: int, status: str, reason: str = "") -> None:
        sent_at = timezone.now() if status == DeliveryStatus.SENT else None
        adapted = connection.ops.adapt_datetimefield_value(sent_at)
        self.outcomes.append([status, reason, adapted, delivery_id])

    def claim(self, delivery_ids: list[int]) -> set[int]:
        with transaction.atomic(), connection.cursor() as cursor:
            self._write_outcomes(cursor)
            states = [DeliveryStatus.SENDING, DeliveryStatus.PENDING]
            if self.returning:
                placeholders = ", ".join(["%s"] * len(delivery_ids))
                cursor.execute(
                    f"{self.claim_sql} IN ({placeholders}) RETURNING id", states + delivery_ids
                )
                return {row[0] for row in cursor.fetchall()}
            claimed = set()
            for delivery_id in delivery_ids:
                cursor.execute(f"{self.claim_sql} = %s", [*states, delivery_id])
                if cursor.rowcount == 1:
                    claimed.add(delivery_id)
            return claimed

    def flush(self) -> None:
        if self.outcomes:
            with transaction.atomic(), connection.cursor() as cursor:
                self._write_outcomes(cursor)

    def _write_outcomes(self, cursor) -> None:
        if self.outcomes:
            cursor.executemany(self.outcome_sql, self.outcomes)
            self.outcomes = []


def refresh_notification(notification_id: int) -> None:
    """Recount a notification's deliveries onto its tracking row; finish it when all are done."""
    notification = Notification.objects.get(pk=notification_id)
    if notification.record_id is None:
        return
    counts = dict(
        Delivery.objects.filter(notification_id=notification_id)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    total = sum(counts.values())
    unfinished = sum(counts.get(status, 0) for status in UNFINISHED_DELIVERY)
    summary = ", ".join(
        f"{counts.get(status, 0)} {status}"
        for status in (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED)
    )
    TaskRecord.objects.filter(pk=notification.record_id).unfinished().update(
        progress_done=total - unfinished,
        progress_total=total,
        message=summary,
        heartbeat_at=timezone.now(),
    )
    if notification.fanned_out_at is None:
        return
    if unfinished == 0:
        finish(notification.record_id, TaskStatus.SUCCEEDED, message=summary)
        return
    batches = TaskRecord.objects.filter(parent_id=notification.record_id, kind=KIND_SEND)
    if not batches.unfinished().exists():
        failed = batches.filter(status=TaskStatus.FAILED).order_by("-finished_at").first()
        if failed is not None:
            TaskRecord.objects.filter(pk=notification.record_id).update(
                status=TaskStatus.FAILED,
                error=failed.error,
                message=f"{summary}, {unfinished} not sent",
                finished_at=timezone.now(),
            )


@task
@tracked
def send_confirmation(run: TaskRun, subscription_id: int) -> None:
    """Email the double opt-in link to a pending subscription."""
    subscription = Subscription.objects.select_related("page").filter(pk=subscription_id).first()
    if subscription is None or subscription.status != SubscriptionStatus.PENDING:
        raise TaskCancelled("The subscription is no longer waiting for confirmation.")
    if problem := address_problem(subscription.email):
        raise ValueError(problem)
    message = confirmation_builder(subscription).build(subscription)
    with open_connection() as connection:
        connection.send_messages([message])
    run.progress(1, total=1)
