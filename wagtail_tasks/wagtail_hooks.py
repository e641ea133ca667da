"""Admin integration only: the "Publish and notify subscribers" action, the Subscriptions area."""

from django.contrib import messages
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from wagtail import hooks
from wagtail.admin.action_menu import PublishMenuItem

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


# Search: the "Rebuild search index" action (the integrator links it from the tasks area).


@hooks.register("register_admin_urls")
def register_search_urls():
    from django.urls import include, path

    from wagtail_tasks.search import views as search_views

    return [path("tasks/search/", include(search_views, namespace="wagtail_tasks_search"))]


from wagtail.admin.menu import MenuItem  # noqa: E402


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
