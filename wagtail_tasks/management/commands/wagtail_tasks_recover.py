"""``manage.py wagtail_tasks_recover``: resume or fail the work of workers that died.

Run it every few minutes (cron, a systemd timer, your scheduler) next to your workers.
"""

from django.core.management.base import BaseCommand

from wagtail_tasks.tracking import recover_stuck


class Command(BaseCommand):
    help = "Fail and enqueue again the background work whose worker stopped sending heartbeats."

    def handle(self, *args, **options) -> None:
        recovery = recover_stuck()
        self.stdout.write(
            f"{len(recovery.requeued)} stuck task(s) enqueued again, "
            f"{len(recovery.failed)} left failed (no attempts left)."
        )
