"""``manage.py wagtail_tasks_prune``: delete what the WAGTAIL_TASKS_KEEP_* settings let go."""

from django.core.management.base import BaseCommand

from wagtail_tasks.retention import prune


class Command(BaseCommand):
    help = (
        "Delete expired report files, old tracking rows, delivery rows and departed subscriptions."
    )

    def handle(self, *args, **options) -> None:
        pruned = prune()
        self.stdout.write(
            f"Deleted {pruned.report_files} expired report file(s), "
            f"{pruned.tasks} tracking row(s), {pruned.deliveries} delivery row(s), "
            f"{pruned.subscriptions} subscription(s)."
        )
