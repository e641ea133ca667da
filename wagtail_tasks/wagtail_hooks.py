"""Admin integration only: the "Publish and notify subscribers" action, the Subscriptions area."""

from django.contrib import messages
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from wagtail import hooks
from wagtail.admin.action_menu import PublishMenuItem
from wagtail.admin.menu import MenuItem
from wagtail.log_actions import LogFormatter

from wagtail_tasks.notifications.admin_views import SubscriptionViewSet
from wagtail_tasks.notifications.mixins import NotifySubscribersMixin
from wagtail_tasks.notifications.models import NotificationTrigger
from wagtail_tasks.notifications.policy import notify_subscribers

NOTIFY_VALUE = "notify"


class PublishAndNotifyMenuItem(PublishMenuItem):
    """Publishes like "Publish" and asks for a notification even when it is not the first."""

    label = gettext_lazy("Publish and notify subscribers")
    name = "action-publish-notify"
    template_name = "wagtail_tasks/admin/publish_and_notify.html"
    icon_name = "mail"
    order = 25

    def is_shown(self, context):
        page = context.get("page")
        return (
            context["view"] == "edit"
            and isinstance(page, NotifySubscribersMixin)
            and super().is_shown(context)
        )


@hooks.register("register_page_action_menu_item")
def register_publish_and_notify():
    return PublishAndNotifyMenuItem()


@hooks.register("after_publish_page")
def notify_if_asked(request, page):
    if request.POST.get("action-publish") != NOTIFY_VALUE:
        return
    if not page.live or page.live_revision_id is None:
        messages.warning(
            request,
            _(
                "The page is not live yet, so no subscribers were notified. "
                "Use this action again once it is live."
            ),
        )
        return
    notification = notify_subscribers(
        page, page.live_revision, NotificationTrigger.REQUESTED, requested_by=request.user
    )
    messages.success(
        request,
        _("Subscribers of “%(title)s” are being notified in the background.")
        % {"title": notification.page_title},
    )


@hooks.register("register_admin_viewset")
def register_subscriptions():
    return SubscriptionViewSet("wagtail_tasks_subscriptions")


# The Background tasks area and the dashboard panel (wagtail_tasks.admin).


@hooks.register("register_admin_viewset")
def register_tasks_area():
    from wagtail_tasks.admin.tasks_area import viewset

    return viewset()


@hooks.register("construct_homepage_panels")
def add_tasks_dashboard_panel(request, panels):
    from wagtail_tasks.admin.dashboard import add_panel

    add_panel(request, panels)


# The page editor's "Background tasks" panel: its URLs, audit log actions and header buttons.


@hooks.register("register_admin_urls")
def register_page_tasks_urls():
    from django.urls import include, path

    from wagtail_tasks.admin import urls

    return [path("tasks/", include(urls, namespace="wagtail_tasks_admin"))]


@hooks.register("register_log_actions")
def register_page_tasks_log_actions(actions):
    from wagtail_tasks.admin.page_tasks import LOG_CANCEL, LOG_RETRY, LOG_SEND

    @actions.register_action(LOG_RETRY)
    class RetryDeliveries(LogFormatter):
        label = gettext_lazy("Retry failed notification emails")

        def format_message(self, log_entry):
            data = log_entry.data or {}
            if data.get("fan_out"):
                return _("Ran the failed subscriber notification again")
            return _("Sent %(count)s failed notification emails again") % {
                "count": data.get("deliveries")
            }

    @actions.register_action(LOG_CANCEL)
    class CancelNotification(LogFormatter):
        label = gettext_lazy("Cancel subscriber notification")

        def format_message(self, log_entry):
            count = (log_entry.data or {}).get("skipped")
            return _("Cancelled the subscriber notification; %(count)s emails not sent") % {
                "count": count
            }

    actions.register_action(
        LOG_SEND,
        gettext_lazy("Notify subscribers"),
        gettext_lazy("Asked for subscribers to be notified about the live version"),
    )


@hooks.register("register_page_header_buttons")
def page_tasks_header_buttons(page, user, view_name, next_url=None):
    from django.urls import reverse
    from wagtail.admin.widgets import Button

    from wagtail_tasks.admin.page_tasks import page_can_notify
    from wagtail_tasks.admin.panels import find_tasks_tab

    tab = find_tasks_tab(page.specific_class) if page.specific_class else None
    if tab is None or not page.permissions_for_user(user).can_edit():
        return
    edit_url = reverse("wagtailadmin_pages:edit", args=[page.pk])
    yield Button(
        _("Background tasks"),
        f"{edit_url}#tab-{tab}" if tab else edit_url,
        icon_name="tasks",
        priority=75,
    )
    if page_can_notify(page):
        yield Button(
            _("Notify subscribers"),
            reverse("wagtail_tasks_admin:send_notification", args=[page.pk]),
            icon_name="mail",
            priority=76,
        )


# Search: the "Rebuild search index" action (the integrator links it from the tasks area).


@hooks.register("register_admin_urls")
def register_search_urls():
    from django.urls import include, path

    from wagtail_tasks.search import views as search_views

    return [path("tasks/search/", include(search_views, namespace="wagtail_tasks_search"))]


class RebuildSearchMenuItem(MenuItem):
    def is_shown(self, request):
        from wagtail_tasks.search.views import can_rebuild

        return can_rebuild(request.user)


@hooks.register("register_settings_menu_item")
def register_search_rebuild_menu_item():
    from django.urls import reverse

    return RebuildSearchMenuItem(
        gettext_lazy("Rebuild search index"),
        reverse("wagtail_tasks_search:rebuild"),
        icon_name="search",
        order=1000,
    )


# Reports: their pages under /admin/reports/background/, one Reports menu item per report the
# user may run, and "Report files" with their recent files.


@hooks.register("register_admin_urls")
def register_report_urls():
    from django.urls import include, path

    from wagtail_tasks.reports import views as report_views

    return [path("reports/background/", include(report_views, namespace="wagtail_tasks_reports"))]


@hooks.register("construct_reports_menu")
def add_report_menu_items(request, menu_items):
    from django.urls import reverse

    from wagtail_tasks.reports import reports_for

    reports = reports_for(request.user)
    for order, report in enumerate(reports, start=2000):
        menu_items.append(
            MenuItem(
                report.title,
                reverse("wagtail_tasks_reports:report", args=[report.name]),
                name=f"wagtail-tasks-report-{report.name}",
                icon_name=report.icon,
                order=order,
            )
        )
    if reports:
        menu_items.append(
            MenuItem(
                gettext_lazy("Report files"),
                reverse("wagtail_tasks_reports:index"),
                name="wagtail-tasks-report-files",
                icon_name="download",
                order=2999,
            )
        )
