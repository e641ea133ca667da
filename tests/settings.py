"""Settings for the test suite. DATABASE_URL picks the database (SQLite by default)."""

import os
from pathlib import Path

import dj_database_url

from wagtail_tasks.task_api import DATABASE_BACKEND, DUMMY_BACKEND, IMMEDIATE_BACKEND, RQ_BACKEND

BASE_DIR = Path(__file__).resolve().parent
VAR = BASE_DIR.parent / "var"  # scratch space: test databases, media
VAR.mkdir(exist_ok=True)  # SQLite cannot create its file in a missing folder
SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR.parent / 'var' / 'tests.sqlite3'}"),
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A web process and a worker write at once: WAL and a busy timeout, never "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not :memory:, so that worker processes can open it; one per test run.
    DATABASES["default"]["TEST"] = {
        "NAME": str(BASE_DIR.parent / "var" / f"test_db_{os.getpid()}.sqlite3")
    }

INSTALLED_APPS = [
    "wagtail_tasks",
    "tests.testapp",
    "django_tasks",
    "django_tasks_db",
    "django_rq",
    "wagtail.contrib.settings",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Wagtail's database search backend uses PostgreSQL's full-text search fields.
    INSTALLED_APPS.append("django.contrib.postgres")

ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR.parent / "var" / "static"
MEDIA_ROOT = BASE_DIR.parent / "var" / "media"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

WAGTAIL_SITE_NAME = "Test site"
WAGTAILADMIN_BASE_URL = "http://testserver"
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}

# "default" runs tasks in-process; tests route kinds of work to "dummy" (keeps what was
# enqueued) or "database" (django-tasks-db, worked by a real db_worker process) with
# WAGTAIL_TASKS.
TASKS = {
    "default": {"BACKEND": IMMEDIATE_BACKEND},
    "dummy": {"BACKEND": DUMMY_BACKEND},
    "database": {"BACKEND": DATABASE_BACKEND, "QUEUES": ["default"]},
    # django-tasks-rq on the shared Redis (database 5, queues prefixed "wt-"), worked by
    # real ``rqworker`` processes (tests/backends/).
    "rq": {"BACKEND": RQ_BACKEND, "QUEUES": ["wt-default", "wt-sending"]},
    # The same on a Redis server of the test's own (started, stopped and restarted by
    # tests/backends/test_rq.py to take the backend down).
    "rq-own": {"BACKEND": RQ_BACKEND, "QUEUES": ["wt-own"]},
}
REDIS_URL = os.environ.get("WAGTAIL_TASKS_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Chosen once per test run and inherited by the worker processes it starts.
OWN_REDIS_PORT = int(os.environ.setdefault("WAGTAIL_TASKS_TEST_OWN_REDIS_PORT", str(_free_port())))
RQ_QUEUES = {
    # django-tasks-rq reads every job's result through the connection of the "default"
    # queue: it must exist, on the Redis the jobs are on.
    "default": {"URL": REDIS_URL},
    "wt-default": {"URL": REDIS_URL},
    "wt-sending": {"URL": REDIS_URL},
    "wt-own": {"URL": f"redis://127.0.0.1:{OWN_REDIS_PORT}/0", "SOCKET_TIMEOUT": 2},
}

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = "news@example.com"

# Worker processes started by the tests (tests/worker.py) get their routes and SMTP port here.
if route := os.environ.get("WAGTAIL_TASKS_TEST_ROUTE"):
    WAGTAIL_TASKS = {
        group: {"backend": route, "queue": os.environ.get("WAGTAIL_TASKS_TEST_QUEUE", "default")}
        for group in ("notifications", "sending", "email", "reports")
    }
# Seconds before the first retry of an email, and of a send batch (worker tests shorten them).
WAGTAIL_TASKS_MAIL_RETRY_DELAY = float(os.environ.get("WAGTAIL_TASKS_TEST_RETRY_DELAY", 60))
WAGTAIL_TASKS_SEND_RETRY_DELAY = float(os.environ.get("WAGTAIL_TASKS_TEST_RETRY_DELAY", 10))
if smtp_port := os.environ.get("WAGTAIL_TASKS_TEST_SMTP_PORT"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = "127.0.0.1"
    EMAIL_PORT = int(smtp_port)
if mail_backend := os.environ.get("WAGTAIL_TASKS_TEST_EMAIL_BACKEND"):
    EMAIL_BACKEND = mail_backend
WAGTAIL_TASKS_SEND_BATCH_SIZE = int(os.environ.get("WAGTAIL_TASKS_TEST_BATCH_SIZE", 100))
WAGTAIL_TASKS_CLAIM_SIZE = int(os.environ.get("WAGTAIL_TASKS_TEST_CLAIM_SIZE", 10))
if template_dir := os.environ.get("WAGTAIL_TASKS_TEST_TEMPLATE_DIR"):
    TEMPLATES[0]["DIRS"] = [template_dir, *TEMPLATES[0]["DIRS"]]

# Report files go to a storage of their own: tests/conftest.py points it (and the worker
# processes a test starts, through the environment) at the test's temporary folder.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "reports": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": os.environ.get(
                "WAGTAIL_TASKS_TEST_REPORT_DIR", str(BASE_DIR.parent / "var" / "test-reports")
            ),
            "base_url": None,
        },
    },
}
WAGTAIL_TASKS_REPORT_STORAGE = "reports"
