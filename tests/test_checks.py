"""System checks of the routes and the private storages (wagtail_tasks/checks.py)."""

import pytest

from wagtail_tasks.checks import check_private_storages, check_routes, check_site_settings
from wagtail_tasks.site_settings import TaskSettings


def ids(messages):
    return sorted(m.id for m in messages)


def test_the_test_settings_routes_are_valid_apart_from_retries_on_immediate(settings):
    settings.WAGTAIL_TASKS = {"sending": {"backend": "database"}, "email": {"backend": "database"}}
    assert check_routes() == []


def test_an_unknown_alias_is_an_error(settings):
    settings.WAGTAIL_TASKS = {"notifications": {"backend": "celery"}}
    [error] = [m for m in check_routes() if m.id == "wagtail_tasks.E001"]
    assert "'celery'" in error.msg and "WAGTAIL_TASKS['notifications']" in error.msg
    assert "dummy" in error.hint and "database" in error.hint


def test_a_queue_the_backend_does_not_list_is_an_error(settings):
    settings.WAGTAIL_TASKS = {"reports": {"backend": "database", "queue": "reports"}}
    [error] = [m for m in check_routes() if m.id == "wagtail_tasks.E002"]
    assert "'reports'" in error.msg and "QUEUES" in error.hint


def test_a_backend_without_queue_restrictions_takes_any_queue(settings):
    settings.TASKS = {
        **settings.TASKS,
        "anyq": {"BACKEND": settings.TASKS["dummy"]["BACKEND"], "QUEUES": []},
    }
    settings.WAGTAIL_TASKS = {"reports": {"backend": "anyq", "queue": "whatever"}}
    assert "wagtail_tasks.E002" not in ids(check_routes())


def test_a_priority_on_a_backend_without_priorities_is_a_warning(settings):
    settings.WAGTAIL_TASKS = {"search": {"backend": "rq", "queue": "wt-default", "priority": 10}}
    [warning] = [m for m in check_routes() if m.id == "wagtail_tasks.W003"]
    assert "priority 10" in warning.msg and "ignored" in warning.hint


def test_retries_on_a_backend_that_cannot_defer_are_a_warning_saying_what_happens(settings):
    settings.WAGTAIL_TASKS = {"email": {"backend": "database"}}
    warnings = [m for m in check_routes() if m.id == "wagtail_tasks.W004"]
    assert [w.msg.split(":")[0] for w in warnings] == ["'sending' (default)"]
    assert "fails visibly" in warnings[0].hint and "retry" in warnings[0].hint
    # Groups that never retry are fine anywhere.
    settings.WAGTAIL_TASKS = {
        "sending": {"backend": "rq", "queue": "wt-sending"},
        "email": {"backend": "rq", "queue": "wt-default"},
        "notifications": {"backend": "dummy"},
    }
    assert "wagtail_tasks.W004" not in ids(check_routes())


@pytest.mark.django_db
def test_a_site_setting_naming_a_removed_alias_is_a_warning(site):
    TaskSettings.objects.create(site=site, sending_backend="gone", search_backend="dummy")
    [warning] = check_site_settings()
    assert warning.id == "wagtail_tasks.W005"
    assert "'gone'" in warning.msg and "'sending'" in warning.msg
    assert "Background tasks" in warning.hint


def test_the_checks_are_registered():
    from django.core.checks.registry import registry

    assert {check_routes, check_site_settings} <= set(registry.get_checks())


def test_the_test_settings_storages_are_private():
    assert check_private_storages() == []


def test_a_private_storage_alias_missing_from_storages_is_an_error(settings):
    settings.WAGTAIL_TASKS_REPORT_STORAGE = "private-reports"
    [error] = check_private_storages()
    assert error.id == "wagtail_tasks.E006"
    assert "WAGTAIL_TASKS_REPORT_STORAGE" in error.msg and "'private-reports'" in error.msg


def test_a_private_storage_inside_media_root_is_a_warning(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media" / "attachments")},
        },
    }
    settings.WAGTAIL_TASKS_MAIL_STORAGE = "attachments"
    [warning] = check_private_storages()
    assert warning.id == "wagtail_tasks.W007"
    assert "WAGTAIL_TASKS_MAIL_STORAGE" in warning.msg and "inside MEDIA_ROOT" in warning.msg
