from wagtail.admin.panels import ObjectList, TabbedInterface
from wagtail.fields import RichTextField
from wagtail.models import Page

from wagtail_tasks.admin.panels import TasksPanel
from wagtail_tasks.notifications.mixins import NotifySubscribersMixin


class SectionPage(Page):
    """A section people subscribe to; it does not notify by itself."""


class ArticlePage(NotifySubscribersMixin, Page):
    body = RichTextField(blank=True)

    # The default tabs (the body is not edited in these tests), and the Tasks tab.
    edit_handler = TabbedInterface(
        [
            ObjectList(Page.content_panels, heading="Content"),
            ObjectList(Page.promote_panels, heading="Promote"),
            ObjectList(Page.settings_panels, heading="Settings"),
            ObjectList([TasksPanel()], heading="Tasks"),
        ]
    )


class PlainPage(Page):
    """A page type that has not opted in to notifications."""
