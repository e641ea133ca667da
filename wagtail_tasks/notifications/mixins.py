"""The page-type opt-in: pages with this mixin email their subscribers when published."""

from typing import Any

from wagtail.models import Revision


class NotifySubscribersMixin:
    """Add to a page model to email the subscribers of the page and its sections on publish.

    Override the ``get_*`` methods or the template names to change when and what is sent.
    """

    notification_subject_template = "wagtail_tasks/notifications/email_subject.txt"
    notification_text_template = "wagtail_tasks/notifications/email_body.txt"
    notification_html_template = "wagtail_tasks/notifications/email_body.html"

    def should_notify_subscribers(self, revision: Revision | None) -> bool:
        """Whether this publication notifies automatically. Default: the first go-live only.

        Wagtail sets ``first_published_at`` and ``last_published_at`` to the same instant when
        a page first goes live (now, or later by ``publish_scheduled``); every republish moves
        only ``last_published_at``. Editors can still ask for a notification on any publish.
        """
        first = getattr(self, "first_published_at", None)
        return first is not None and first == getattr(self, "last_published_at", None)

    def get_notification_templates(self) -> tuple[str, str, str]:
        return (
            self.notification_subject_template,
            self.notification_text_template,
            self.notification_html_template,
        )

    def get_notification_context(self) -> dict[str, Any]:
        """Extra template context, computed once per batch (not per recipient)."""
        return {}
