"""The sandbox's page types: a home page, news sections, and articles that notify subscribers."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import models
from django.http import HttpRequest
from wagtail.admin.panels import FieldPanel, ObjectList, TabbedInterface
from wagtail.fields import RichTextField
from wagtail.models import Page
from wagtail.search import index

from wagtail_tasks.admin.panels import TasksPanel
from wagtail_tasks.notifications.mixins import NotifySubscribersMixin


class HomePage(Page):
    intro = RichTextField(blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    parent_page_types = ["wagtailcore.Page"]
    subpage_types = ["home.BlogIndexPage"]
    max_count = 1

    def get_context(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context(request, *args, **kwargs)
        context["sections"] = BlogIndexPage.objects.child_of(self).live()
        context["latest"] = (
            ArticlePage.objects.descendant_of(self)
            .live()
            .select_related("feature_image")
            .order_by("-date", "-first_published_at")[:3]
        )
        return context


class BlogIndexPage(Page):
    """A section readers subscribe to. Publishing it notifies nobody; its articles do."""

    intro = RichTextField(blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    edit_handler = TabbedInterface(
        [
            ObjectList(content_panels, heading="Content"),
            ObjectList(Page.promote_panels, heading="Promote"),
            ObjectList(Page.settings_panels, heading="Settings"),
            ObjectList([TasksPanel()], heading="Tasks"),
        ]
    )
    parent_page_types = ["home.HomePage"]
    subpage_types = ["home.ArticlePage"]

    def get_context(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context(request, *args, **kwargs)
        context["articles"] = (
            ArticlePage.objects.child_of(self)
            .live()
            .select_related("feature_image")
            .order_by("-date", "-first_published_at")
        )
        return context


class ArticlePage(NotifySubscribersMixin, Page):
    """Emails the subscribers of its section (and of itself) when it first goes live."""

    date = models.DateField("post date", default=datetime.date.today)
    intro = models.CharField(max_length=250, blank=True)
    feature_image = models.ForeignKey(
        "wagtailimages.Image",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    body = RichTextField(blank=True)

    content_panels = [
        *Page.content_panels,
        FieldPanel("date"),
        FieldPanel("intro"),
        FieldPanel("feature_image"),
        FieldPanel("body"),
    ]
    edit_handler = TabbedInterface(
        [
            ObjectList(content_panels, heading="Content"),
            ObjectList(Page.promote_panels, heading="Promote"),
            ObjectList(Page.settings_panels, heading="Settings"),
            ObjectList([TasksPanel()], heading="Tasks"),
        ]
    )
    search_fields = [*Page.search_fields, index.SearchField("intro"), index.SearchField("body")]
    parent_page_types = ["home.BlogIndexPage"]
    subpage_types: list[str] = []
