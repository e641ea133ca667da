"""Settings for the sandbox site (``make demo``). Not for production: DEBUG is on.

Read from the environment:
    DATABASE_URL   default SQLite at var/sandbox.sqlite3
    TASKS_BACKEND  default django_tasks_db.DatabaseBackend (worked by ``manage.py db_worker``)
    EMAIL_HOST     default 127.0.0.1
    EMAIL_PORT     default $SMTP_PORT or 1025 (the sandbox mail sink)
    DEMO_PORT      default 8000 (the port the site is served on, for links in emails)
"""

import os
from pathlib import Path

import dj_database_url

from wagtail_tasks.task_api import DATABASE_BACKEND

SANDBOX_DIR = Path(__file__).resolve().parent
REPO_DIR = SANDBOX_DIR.parent
VAR_DIR = REPO_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)  # SQLite cannot create its file in a missing folder

DEMO_PORT = int(os.environ.get("DEMO_PORT", "8000"))

SECRET_KEY = os.environ.get("SECRET_KEY", "sandbox-only-not-secret")
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "sandbox.home",
    "wagtail_tasks",
    "django_tasks",
    "django_tasks_db",
    "wagtail.contrib.settings",
    "wagtail.contrib.redirects",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django_filters",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]

ROOT_URLCONF = "sandbox.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Before the apps' templates: the sandbox restyles wagtail_tasks' subscription pages.
        "DIRS": [SANDBOX_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "wagtail.contrib.settings.context_processors.settings",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'sandbox.sqlite3'}"),
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write at once: WAL, IMMEDIATE transactions and a busy
    # timeout, so neither ever sees "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Wagtail's database search backend uses PostgreSQL's full-text search fields.
    INSTALLED_APPS.append("django.contrib.postgres")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [SANDBOX_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"

# Wagtail's page editor can post many fields.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000

WAGTAIL_SITE_NAME = "wagtail-tasks sandbox"
WAGTAILADMIN_BASE_URL = f"http://127.0.0.1:{DEMO_PORT}"
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
WAGTAILDOCS_EXTENSIONS = ["csv", "docx", "odt", "pdf", "txt", "xlsx", "zip"]

# Background work. With the database backend, `manage.py db_worker` runs the tasks.
TASKS = {"default": {"BACKEND": os.environ.get("TASKS_BACKEND", DATABASE_BACKEND)}}

# Email goes to the local mail sink (python -m sandbox.mailsink), which saves .eml files.
# The site's own emails (password resets, moderation) are queued and sent by the worker
# (the task email backend); subscriber notifications, already in tasks, use SMTP directly.
EMAIL_BACKEND = "wagtail_tasks.mail.TaskEmailBackend"
WAGTAIL_TASKS_MAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = os.environ.get("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", os.environ.get("SMTP_PORT", "1025")))
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = "news@sandbox.localhost"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"wagtail_tasks": {"handlers": ["console"], "level": "INFO"}},
}
