"""Subscriptions to pages, the notifications a publish causes, and one delivery per recipient."""

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Value
from django.db.models.functions import Cast, Concat, Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SubscriptionStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for confirmation")
    CONFIRMED = "confirmed", _("Confirmed")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")


ERASED_REASON = "Details erased: the subscriber left."


class SubscriptionQuerySet(models.QuerySet):
    def confirmed(self):
        return self.filter(status=SubscriptionStatus.CONFIRMED)

    def unsubscribe(self) -> int:
        """Unsubscribe these and erase what their delivery rows say about the address."""
        count = self.exclude(status=SubscriptionStatus.UNSUBSCRIBED).update(
            status=SubscriptionStatus.UNSUBSCRIBED, unsubscribed_at=timezone.now()
        )
        erase_delivery_details(self.values("pk"))
        return count

    def for_page(self, page):
        """Subscriptions that cover ``page``: to it, or to an ancestor with its descendants."""
        ancestor_ids = page.get_ancestors().values_list("pk", flat=True)
        return self.filter(
            models.Q(page_id=page.pk)
            | models.Q(include_descendants=True, page_id__in=list(ancestor_ids))
        )


class Subscription(models.Model):
    """Someone who wants an email when ``page`` (and, optionally, a page below it) goes live."""

    # Our bookkeeping, not content: Wagtail's reference index (and its task per save) skips it.
    wagtail_reference_index_ignore = True

    page = models.ForeignKey(
        "wagtailcore.Page", on_delete=models.CASCADE, related_name="+", verbose_name=_("page")
    )
    include_descendants = models.BooleanField(
        _("include pages below"),
        default=True,
        help_text=_("Also notify when a page below this one is published."),
    )
    email = models.EmailField(_("email"), max_length=254)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=SubscriptionStatus.choices,
        default=SubscriptionStatus.PENDING,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        constraints = [
            models.UniqueConstraint(
                Lower("email"), "page", name="wagtail_tasks_subscription_unique_email_page"
            )
        ]
        indexes = [models.Index(fields=["page", "status"])]

    def __str__(self) -> str:
        return f"{self.email} → {self.page_id}"

    @property
    def email_key(self) -> str:
        """Identifies the address within one notification, so an address gets one email."""
        return email_key(self.email)


def email_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


class NotificationTrigger(models.TextChoices):
    FIRST_PUBLISH = "first_publish", _("First publication")
    REQUESTED = "requested", _("Requested by an editor")


class Notification(models.Model):
    """The emails caused by one publication of one page revision.

    At most one per (page, revision): duplicate signals and double clicks collapse into it.
    """

    # Our bookkeeping, not content: Wagtail's reference index (and its task per save) skips it.
    wagtail_reference_index_ignore = True

    page = models.ForeignKey(
        "wagtailcore.Page", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    revision = models.ForeignKey(
        "wagtailcore.Revision", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    page_title = models.CharField(max_length=255)
    trigger = models.CharField(max_length=16, choices=NotificationTrigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The fan-out task's tracking row; its progress counts finished deliveries.
    record = models.OneToOneField(
        "wagtail_tasks.TaskRecord",
        null=True,
        on_delete=models.SET_NULL,
        related_name="notification",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            models.UniqueConstraint(
                fields=["page", "revision"], name="wagtail_tasks_notification_unique_revision"
            )
        ]

    def __str__(self) -> str:
        return f"Notification of “{self.page_title}”"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")


UNFINISHED_DELIVERY = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


class Delivery(models.Model):
    """One email of one notification to one address; its unique key makes sending idempotent."""

    # Our bookkeeping, not content: Wagtail's reference index (and its task per save) skips it.
    wagtail_reference_index_ignore = True

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    subscription = models.ForeignKey(
        Subscription, null=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    email_key = models.CharField(max_length=64)
    # The send task that owns this delivery; a re-run of the fan-out only batches the rest.
    batch = models.ForeignKey(
        "wagtail_tasks.TaskRecord",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "email_key"], name="wagtail_tasks_delivery_unique_address"
            )
        ]
        indexes = [models.Index(fields=["notification", "status"])]

    def __str__(self) -> str:
        return f"Delivery {self.pk} ({self.status})"


def erase_delivery_details(subscription_ids) -> int:
    """Keep a departed subscriber's deliveries as counts only: no address hash, no reason text
    (an SMTP answer or a validation message may quote the address)."""
    deliveries = Delivery.objects.filter(subscription_id__in=subscription_ids).exclude(
        reason=ERASED_REASON
    )
    return deliveries.update(
        email_key=Concat(Value("erased:"), Cast("pk", models.CharField())),
        reason=ERASED_REASON,
    )
