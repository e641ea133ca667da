"""The reports wagtail_tasks ships: content inventory, notification deliveries, failed
deliveries, subscribers, and Wagtail's own Aging pages and Site history.

Registered in ``AppConfig.ready()``; a site removes one with ``unregister_report(name)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import django_filters
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _
from wagtail.admin.filters import ContentTypeFilter, DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.views.reports.aging_pages import AgingPagesView
from wagtail.admin.views.reports.audit_logging import LogEntriesView
from wagtail.admin.widgets import AdminPageChooser
from wagtail.coreutils import get_content_type_label, multigetattr
from wagtail.models import Page, get_page_content_types
from wagtail.permission_policies.pages import PagePermissionPolicy

from wagtail_tasks.models import TaskStatus
from wagtail_tasks.notifications.models import (
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationTrigger,
    Subscription,
    SubscriptionStatus,
)
from wagtail_tasks.reports.base import Report, WagtailReport, register_report, yes_no

PAGE_EDITING = ["add", "change", "publish"]


def label_of(choices: type[models.Choices]) -> Callable[[Any], str]:
    """A stored code as the admin shows it ("Confirmed", not "confirmed")."""
    labels = dict(choices.choices)
    return lambda value: str(labels.get(value, value))


def username(user: Any) -> str:
    return user.get_username() if user else ""


def below_page(queryset, name, page):
    """Filter method: ``page`` and the pages below it (``name`` is the page relation)."""
    if not page:
        return queryset
    prefix = f"{name}__" if name else ""
    return queryset.filter(**{f"{prefix}path__startswith": page.path})


class SectionChooser(AdminPageChooser):
    """Wagtail's page chooser, showing no page (not a server error) when the form is shown
    again with a value that is no page id at all (``?section=abc`` in a hand-edited link)."""

    def get_instance(self, value):
        try:
            return super().get_instance(value)
        except (ValueError, TypeError, OverflowError, ValidationError):
            return None


class SectionFilter(django_filters.ModelChoiceFilter):
    """A page chooser: keep rows of that page and the pages below it."""

    def __init__(self, relation: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("label", _("Page and the pages below it"))
        kwargs.setdefault("widget", SectionChooser())
        kwargs["queryset"] = Page.objects.all()
        super().__init__(method=self.filter_section, **kwargs)
        self.relation = relation

    def filter_section(self, queryset, name, page):
        return below_page(queryset, self.relation, page)


# Content inventory ----------------------------------------------------------------------


class ContentInventoryFilterSet(WagtailFilterSet):
    section = SectionFilter()
    live = django_filters.BooleanFilter(label=_("Live"))
    content_type = ContentTypeFilter(
        label=_("Type"),
        queryset=lambda request: get_page_content_types(include_base_page_type=False),
    )
    last_published_at = django_filters.DateFromToRangeFilter(
        label=_("Last published"), widget=DateRangePickerWidget
    )

    class Meta:
        model = Page
        fields = ["section", "live", "content_type", "last_published_at"]


@register_report
class ContentInventoryReport(Report):
    name = "content-inventory"
    title = _("Content inventory")
    description = _("Every page: title, URL, type, live state, last published, owner, locale "
                    "and number of subscribers.")  # fmt: skip
    icon = "doc-full"
    filterset_class = ContentInventoryFilterSet
    list_export = [
        "id",
        "title",
        "report_url",
        "content_type",
        "live",
        "has_unpublished_changes",
        "last_published_at",
        "owner",
        "locale.language_code",
        "report_subscribers",
    ]
    export_headings = {
        "id": _("ID"),
        "report_url": _("URL"),
        "content_type": _("Type"),
        "has_unpublished_changes": _("Unpublished changes"),
        "locale.language_code": _("Locale"),
        "report_subscribers": _("Subscribers"),
    }

    def __init__(self, user: Any) -> None:
        super().__init__(user)
        self.custom_field_preprocess = {
            "content_type": {fmt: get_content_type_label for fmt in self.FORMATS},
            "live": {fmt: yes_no for fmt in self.FORMATS},
            "has_unpublished_changes": {fmt: yes_no for fmt in self.FORMATS},
            "owner": {
                fmt: lambda user: user.get_username() if user else "" for fmt in self.FORMATS
            },
        }
        self._section_counts: Counter | None = None

    def has_permission(self) -> bool:
        return bool(
            getattr(self.user, "is_active", False)
        ) and PagePermissionPolicy().user_has_any_permission(self.user, PAGE_EDITING)

    def get_queryset(self):
        return (
            PagePermissionPolicy()
            .instances_user_has_any_permission_for(self.user, PAGE_EDITING)
            .filter(depth__gt=1)  # not the tree's root
            .select_related("content_type", "owner", "locale")
            .order_by("path")
        )

    def decorate_chunk(self, pages):
        """URLs with one cached set of site roots, and subscriber counts, per chunk."""
        request = self.url_request
        direct = Counter(
            dict(
                Subscription.objects.confirmed()
                .filter(page_id__in=[page.pk for page in pages])
                .values_list("page_id")
                .annotate(n=Count("pk"))
            )
        )
        sections = self.section_counts()
        for page in pages:
            page.report_url = page.get_full_url(request) or ""
            # Subscribers to the page itself, and to sections above it (with its descendants).
            above = sum(
                sections.get(page.path[:end], 0)
                for end in range(Page.steplen, len(page.path), Page.steplen)
            )
            page.report_subscribers = direct.get(page.pk, 0) + above
        return pages

    @property
    def url_request(self) -> Any:
        # Wagtail caches the site root paths on the request it gets: one lookup per report.
        if not hasattr(self, "_url_request"):
            self._url_request = self.request_for_filters()
        return self._url_request

    def section_counts(self) -> Counter:
        """Confirmed subscriptions that include descendants, by their page's tree path."""
        if self._section_counts is None:
            self._section_counts = Counter(
                dict(
                    Subscription.objects.confirmed()
                    .filter(include_descendants=True)
                    .values_list("page__path")
                    .annotate(n=Count("pk"))
                )
            )
        return self._section_counts


# Notification deliveries ---------------------------------------------------------------


class NotificationFilterSet(WagtailFilterSet):
    created_at = django_filters.DateFromToRangeFilter(label=_("Date"), widget=DateRangePickerWidget)
    section = SectionFilter(relation="page")

    class Meta:
        model = Notification
        fields = ["created_at", "section"]


def counted(status: str) -> Count:
    return Count("deliveries", filter=Q(deliveries__status=status))


@register_report
class NotificationDeliveriesReport(Report):
    name = "notification-deliveries"
    title = _("Notification deliveries")
    description = _("Each subscriber notification: page, when, and how many emails were sent, "
                    "failed or skipped.")  # fmt: skip
    icon = "mail"
    permission = "wagtail_tasks.view_taskrecord"
    filterset_class = NotificationFilterSet
    list_export = [
        "id",
        "page_title",
        "page_id",
        "created_at",
        "trigger",
        "record.status",
        "sent",
        "failed",
        "skipped",
    ]
    export_headings = {
        "id": _("Notification"),
        "page_title": _("Page"),
        "page_id": _("Page ID"),
        "created_at": _("When"),
        "trigger": _("Trigger"),
        "record.status": _("Status"),
        "sent": _("Sent"),
        "failed": _("Failed"),
        "skipped": _("Skipped"),
    }

    def __init__(self, user: Any) -> None:
        super().__init__(user)
        self.custom_field_preprocess = {
            "trigger": {fmt: label_of(NotificationTrigger) for fmt in self.FORMATS},
            "record.status": {fmt: label_of(TaskStatus) for fmt in self.FORMATS},
        }

    def get_queryset(self):
        return (
            Notification.objects.select_related("record")
            .annotate(
                sent=counted(DeliveryStatus.SENT),
                failed=counted(DeliveryStatus.FAILED),
                skipped=counted(DeliveryStatus.SKIPPED),
            )
            .order_by("-created_at", "-pk")
        )


class FailedDeliveryFilterSet(WagtailFilterSet):
    # An id, bounded: a 30-digit number would pass the form and fail the query in the worker.
    notification = django_filters.NumberFilter(
        label=_("Notification ID"), min_value=1, max_value=2**63 - 1, decimal_places=0
    )
    created_at = django_filters.DateFromToRangeFilter(label=_("Date"), widget=DateRangePickerWidget)

    class Meta:
        model = Delivery
        fields = ["notification", "created_at"]


@register_report
class FailedDeliveriesReport(Report):
    name = "failed-deliveries"
    title = _("Failed notification emails")
    description = _("Every email that could not be delivered, with its reason.")
    icon = "warning"
    permission = "wagtail_tasks.view_taskrecord"
    filterset_class = FailedDeliveryFilterSet
    list_export = [
        "notification_id",
        "notification.page_title",
        "created_at",
        "subscription.email",
        "attempts",
        "reason",
    ]
    export_headings = {
        "notification_id": _("Notification"),
        "notification.page_title": _("Page"),
        "created_at": _("When"),
        "subscription.email": _("Email"),
        "attempts": _("Attempts"),
        "reason": _("Reason"),
    }

    def get_queryset(self):
        return (
            Delivery.objects.filter(status=DeliveryStatus.FAILED)
            .select_related("notification", "subscription")
            .order_by("-created_at", "-pk")
        )

    def to_row_dict(self, item):
        """Wagtail's, but a blank address where the subscriber left (no subscription):
        ``multigetattr`` fails on ``None`` before the address could be blanked."""
        left = item.subscription is None
        return {
            field: "" if left and field == "subscription.email" else multigetattr(item, field)
            for field in self.list_export
        }


# Subscribers -----------------------------------------------------------------------------


class SubscriberFilterSet(WagtailFilterSet):
    section = SectionFilter(relation="page")
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=SubscriptionStatus.choices, empty_label=_("All")
    )
    created_at = django_filters.DateFromToRangeFilter(
        label=_("Subscribed"), widget=DateRangePickerWidget
    )

    class Meta:
        model = Subscription
        fields = ["section", "status", "created_at"]


@register_report
class SubscribersReport(Report):
    name = "subscribers"
    title = _("Subscribers")
    description = _("Subscriptions by page or section, with their confirmed state.")
    icon = "group"
    permission = "wagtail_tasks.view_subscription"
    filterset_class = SubscriberFilterSet
    list_export = [
        "email",
        "page.title",
        "page_id",
        "include_descendants",
        "status",
        "created_at",
        "confirmed_at",
        "unsubscribed_at",
    ]
    export_headings = {
        "page.title": _("Page"),
        "page_id": _("Page ID"),
        "include_descendants": _("Includes pages below"),
    }

    def __init__(self, user: Any) -> None:
        super().__init__(user)
        self.custom_field_preprocess = {
            "include_descendants": {fmt: yes_no for fmt in self.FORMATS},
            "status": {fmt: label_of(SubscriptionStatus) for fmt in self.FORMATS},
        }

    def get_queryset(self):
        return Subscription.objects.select_related("page").order_by("page__path", "email")


# Wagtail's own reports, in the background ------------------------------------------------


@register_report
class AgingPagesReport(WagtailReport):
    name = "aging-pages"
    title = _("Aging pages")
    description = _("Wagtail's Aging pages report with its filters, as a file.")
    icon = "time"
    view_class = AgingPagesView

    def has_permission(self) -> bool:
        return getattr(settings, "WAGTAIL_AGING_PAGES_ENABLED", True) and super().has_permission()


@register_report
class SiteHistoryReport(WagtailReport):
    name = "site-history"
    title = _("Site history")
    description = _("Wagtail's Site history report with its filters, as a file.")
    icon = "history"
    view_class = LogEntriesView

    def has_permission(self) -> bool:
        # As Wagtail's menu item: anyone who can explore some part of the page tree.
        return bool(getattr(self.user, "is_active", False)) and (
            PagePermissionPolicy().explorable_root_instance(self.user) is not None
        )
