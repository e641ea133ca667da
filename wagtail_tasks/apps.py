from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WagtailTasksConfig(AppConfig):
    name = "wagtail_tasks"
    label = "wagtail_tasks"
    verbose_name = _("Wagtail tasks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_save, pre_delete
        from wagtail.signals import page_published

        from wagtail_tasks import retention

        # Importing the task modules registers their kinds (wagtail_tasks.kinds).
        from wagtail_tasks.mail import tasks as mail_tasks  # noqa: F401
        from wagtail_tasks.notifications import tasks  # noqa: F401
        from wagtail_tasks.notifications.models import Subscription
        from wagtail_tasks.notifications.policy import on_page_published

        page_published.connect(on_page_published, dispatch_uid="wagtail_tasks.notify")
        post_save.connect(retention.erase_on_unsubscribe, sender=Subscription)
        pre_delete.connect(retention.erase_on_delete, sender=Subscription)

        from wagtail_tasks.search import policy as search_policy
        from wagtail_tasks.search import tasks as search_tasks  # noqa: F401

        search_policy.connect()

        from wagtail_tasks import checks  # noqa: F401  (registers the system checks)
        from wagtail_tasks.reports import builtin  # noqa: F401
