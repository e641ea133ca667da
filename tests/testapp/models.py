from wagtail.fields import RichTextField
from wagtail.models import Page

from wagtail_tasks.notifications.mixins import NotifySubscribersMixin


class SectionPage(Page):
    """A section people subscribe to; it does not notify by itself."""


class ArticlePage(NotifySubscribersMixin, Page):
    body = RichTextField(blank=True)


class PlainPage(Page):
    """A page type that has not opted in to notifications."""
