"""The editor panel's admin views: its JSON status, and retry / cancel / send.

Every view is for those who can edit the page (403 for everyone else). The actions answer GET
with a confirmation page and act on POST (with Wagtail's CSRF-protected admin form), then
return to the page editor with a message.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods
from wagtail.models import Page

from wagtail_tasks.admin import page_tasks as actions
from wagtail_tasks.admin.page_tasks import page_tasks
from wagtail_tasks.admin.panels import find_tasks_tab, render_body, user_can_see_tasks
from wagtail_tasks.notifications.models import Delivery, DeliveryStatus, Notification


def for_page_editors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Give the view the page, or answer 403 to whoever cannot edit it.

    A plain 403, not ``PermissionDenied``: Wagtail's admin would turn that into a redirect to
    the dashboard for a non-AJAX request.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, page_id: int, *args: Any, **kwargs: Any) -> HttpResponse:
        page = get_object_or_404(Page, pk=page_id)
        if not user_can_see_tasks(page, request.user):
            return HttpResponseForbidden(_("You cannot edit this page."))
        return view(request, page, *args, **kwargs)

    return wrapper


def get_notification(page: Page, notification_id: int) -> Notification:
    return get_object_or_404(
        Notification.objects.select_related("record", "page"), pk=notification_id, page=page
    )


def editor_url(page: Page) -> str:
    url = reverse("wagtailadmin_pages:edit", args=[page.pk])
    tab = find_tasks_tab(page.specific_class) if page.specific_class else None
    return f"{url}#tab-{tab}" if tab else url


@require_GET
@for_page_editors
def page_tasks_status(request: HttpRequest, page: Page) -> JsonResponse:
    """``{"html": <the panel body>, "active": <is anything about the page unfinished>}``."""
    tasks = page_tasks(page)
    response = JsonResponse({"html": render_body(tasks, request), "active": tasks.active})
    response["Cache-Control"] = "no-store"
    return response


def confirm(
    request: HttpRequest, page: Page, title: str, question: str, button: str, **extra: Any
) -> TemplateResponse:
    return TemplateResponse(
        request,
        "wagtail_tasks/admin/confirm_action.html",
        {
            "page": page,
            "page_title": title,
            "header_title": title,
            "header_icon": "mail",
            "question": question,
            "button": button,
            "cancel_url": editor_url(page),
            **extra,
        },
    )


@require_http_methods(["GET", "POST"])
@for_page_editors
def retry_deliveries(request: HttpRequest, page: Page, notification_id: int) -> HttpResponse:
    notification = get_notification(page, notification_id)
    if request.method == "POST":
        if actions.retry_fan_out(notification, request.user):
            messages.success(
                request,
                _("The notification of “%(title)s” is running again.")
                % {"title": notification.page_title},
            )
            return redirect(editor_url(page))
        count = actions.retry_failed_deliveries(notification, request.user)
        if count:
            messages.success(
                request,
                _("%(count)d emails of “%(title)s” are being sent again.")
                % {"count": count, "title": notification.page_title},
            )
        else:
            messages.warning(request, _("There was nothing to retry."))
        return redirect(editor_url(page))
    failed = Delivery.objects.filter(
        notification=notification, status=DeliveryStatus.FAILED
    ).count()
    if notification.fanned_out_at is None:
        question = _("Run this notification again? Its subscribers have not been emailed yet.")
    else:
        question = _("Send the %(count)d failed emails of this notification again?") % {
            "count": failed
        }
    return confirm(request, page, _("Retry failed emails"), question, _("Yes, send them again"))


@require_http_methods(["GET", "POST"])
@for_page_editors
def cancel_notification(request: HttpRequest, page: Page, notification_id: int) -> HttpResponse:
    notification = get_notification(page, notification_id)
    if request.method == "POST":
        skipped = actions.cancel_notification(notification, request.user)
        if skipped < 0:
            messages.warning(request, _("The notification had already finished."))
        else:
            messages.success(
                request,
                _("Notification cancelled: %(count)d emails will not be sent.")
                % {"count": skipped},
            )
        return redirect(editor_url(page))
    return confirm(
        request,
        page,
        _("Cancel notification"),
        _(
            "Stop sending this notification? Emails already sent stay sent; "
            "the others will not be sent."
        ),
        _("Yes, cancel it"),
        serious=True,
    )


@require_http_methods(["GET", "POST"])
@for_page_editors
def send_notification(request: HttpRequest, page: Page) -> HttpResponse:
    if request.method == "POST":
        notification = actions.send_notification(page, request.user)
        if notification is None:
            messages.warning(
                request,
                _("Not sent: the page is not live, or its live version was already sent."),
            )
        else:
            messages.success(
                request,
                _("Subscribers of “%(title)s” are being notified in the background.")
                % {"title": notification.page_title},
            )
        return redirect(editor_url(page))
    return confirm(
        request,
        page,
        _("Notify subscribers"),
        _("Email the subscribers of “%(title)s” about its live version now?")
        % {"title": page.get_admin_display_title()},
        _("Yes, notify them"),
        can_send=page_tasks(page).can_notify,
    )
