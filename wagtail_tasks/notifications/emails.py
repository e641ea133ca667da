"""Rendering subscriber emails from overridable templates."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import get_template
from django.urls import reverse
from django.utils.html import strip_tags

from wagtail_tasks import conf
from wagtail_tasks.notifications import tokens
from wagtail_tasks.notifications.models import Subscription

CONFIRM_TEMPLATES = (
    "wagtail_tasks/notifications/confirm_subject.txt",
    "wagtail_tasks/notifications/confirm_body.txt",
    "wagtail_tasks/notifications/confirm_body.html",
)


def single_line(text: str) -> str:
    """Collapse all whitespace, newlines included: a page title can never inject a header."""
    return " ".join(text.split())


def from_email() -> str:
    return conf.get("WAGTAIL_TASKS_FROM_EMAIL") or settings.DEFAULT_FROM_EMAIL


def open_connection() -> Any:
    """The site's configured email backend, opened once for a whole batch.

    The one place that asks for a mail connection. These emails are sent from a task
    already: when the site's backend is the task email backend, its inner backend sends.
    """
    from wagtail_tasks.mail.backend import sending_connection

    return sending_connection()


def base_url_for(page: Any) -> str:
    """Scheme and host for links in emails: the setting, else the page's site, else the admin's."""
    configured = conf.get("WAGTAIL_TASKS_BASE_URL")
    if configured:
        return configured.rstrip("/")
    site = page.get_site() if page is not None else None
    if site is not None:
        return site.root_url.rstrip("/")
    return getattr(settings, "WAGTAILADMIN_BASE_URL", "http://localhost").rstrip("/")


class MessageBuilder:
    """Renders one kind of email for many recipients.

    Templates are loaded and the shared context computed once; each recipient costs three
    template renders and one token.
    """

    def __init__(
        self,
        templates: tuple[str, str, str],
        context: dict[str, Any],
        base_url: str,
        token_purpose: str,
        link_view: str,
    ) -> None:
        self.subject_template, self.text_template, self.html_template = (
            get_template(name) for name in templates
        )
        self.context = context
        self.base_url = base_url
        self.token_purpose = token_purpose
        self.link_view = link_view

    def link_for(self, subscription: Subscription, view: str, purpose: str) -> str:
        path = reverse(view, args=[tokens.make_token(subscription, purpose)])
        return f"{self.base_url}{path}"

    def build(self, subscription: Subscription) -> EmailMultiAlternatives:
        unsubscribe_url = self.link_for(
            subscription, "wagtail_tasks:unsubscribe", tokens.UNSUBSCRIBE
        )
        context = {
            **self.context,
            "subscription": subscription,
            "unsubscribe_url": unsubscribe_url,
        }
        if self.token_purpose != tokens.UNSUBSCRIBE:
            context["action_url"] = self.link_for(subscription, self.link_view, self.token_purpose)
        subject = single_line(self.subject_template.render(context))
        text = self.text_template.render(context)
        html = self.html_template.render(context)
        message = EmailMultiAlternatives(
            subject=subject,
            body=text or strip_tags(html),
            from_email=from_email(),
            to=[subscription.email],
            headers={
                # RFC 2369 and RFC 8058 one-click unsubscribe.
                "List-Unsubscribe": f"<{unsubscribe_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
        message.attach_alternative(html, "text/html")
        return message


def notification_builder(page: Any) -> MessageBuilder:
    base_url = base_url_for(page)
    page_url = page.get_url(request=None) or ""
    if page_url.startswith("/"):
        page_url = f"{base_url}{page_url}"
    context = {
        "page": page,
        "page_url": page_url,
        "site_name": getattr(page.get_site(), "site_name", "") or "",
        **page.get_notification_context(),
    }
    return MessageBuilder(
        page.get_notification_templates(),
        context,
        base_url,
        token_purpose=tokens.UNSUBSCRIBE,
        link_view="wagtail_tasks:unsubscribe",
    )


def confirmation_builder(subscription: Subscription) -> MessageBuilder:
    page = subscription.page.specific
    return MessageBuilder(
        CONFIRM_TEMPLATES,
        {"page": page, "site_name": getattr(page.get_site(), "site_name", "") or ""},
        base_url_for(page),
        token_purpose=tokens.CONFIRM,
        link_view="wagtail_tasks:confirm",
    )
