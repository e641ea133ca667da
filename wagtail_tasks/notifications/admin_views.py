"""The admin's Subscriptions listing: Wagtail's generic model views, nothing bespoke."""

from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, PageChooserPanel
from wagtail.admin.viewsets.model import ModelViewSet

from wagtail_tasks.notifications.models import Subscription


class SubscriptionViewSet(ModelViewSet):
    model = Subscription
    icon = "mail"
    menu_label = _("Subscriptions")
    add_to_settings_menu = True
    list_display = ["email", "page", "include_descendants", "status", "created_at"]
    list_filter = ["status", "include_descendants"]
    search_fields = ["email"]
    search_backend_name = None  # search the database directly: subscriptions are not indexed
    panels = [
        FieldPanel("email"),
        PageChooserPanel("page"),
        FieldPanel("include_descendants"),
        FieldPanel("status"),
    ]
