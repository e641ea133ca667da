"""An example of scaling out: the sandbox with publishing work spread over two task backends.

- The database backend (django-tasks-db) keeps the light, transactional work: search index
  updates, reports, the site's own emails. ``manage.py db_worker --queue-name default,reports``.
- RQ (django-tasks-rq, on Redis) takes the bulk: the fan-out of a publish and the subscriber
  emails, on queues of their own so that each can get as many workers as it needs::

      manage.py rqworker --job-class django_tasks_rq.Job --with-scheduler wt-notifications
      manage.py rqworker --job-class django_tasks_rq.Job --with-scheduler wt-sending  # x N

  ``--with-scheduler``: send batches retry a mail server outage with ``run_after``.

Run it with ``DJANGO_SETTINGS_MODULE=sandbox.settings_scaled``; ``manage.py check`` validates
the routes (wagtail_tasks.E001-W005). tests/backends/test_scaled_settings.py checks this file.
"""

import os

from sandbox.settings import *  # noqa: F403
from sandbox.settings import INSTALLED_APPS
from wagtail_tasks.task_api import DATABASE_BACKEND, RQ_BACKEND

INSTALLED_APPS = [*INSTALLED_APPS, "django_rq"]

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

TASKS = {
    "default": {"BACKEND": DATABASE_BACKEND, "QUEUES": ["default", "reports"]},
    "rq": {"BACKEND": RQ_BACKEND, "QUEUES": ["wt-notifications", "wt-sending"]},
}

RQ_QUEUES = {
    # django-tasks-rq reads results through the "default" queue's connection: keep it, on
    # the same Redis as the queues it works.
    "default": {"URL": REDIS_URL},
    "wt-notifications": {"URL": REDIS_URL},
    "wt-sending": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600},
}

WAGTAIL_TASKS = {
    "notifications": {"backend": "rq", "queue": "wt-notifications"},
    "sending": {"backend": "rq", "queue": "wt-sending"},
    "search": {"backend": "default", "queue": "default"},
    "reports": {"backend": "default", "queue": "reports"},
    "email": {"backend": "default", "queue": "default"},
}

# Batches of 200 over one SMTP connection; workers on many machines share the database,
# so a worker's connection stays open between tasks.
WAGTAIL_TASKS_SEND_BATCH_SIZE = 200
DATABASES["default"]["CONN_MAX_AGE"] = 600  # noqa: F405
