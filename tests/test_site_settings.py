"""The "Background tasks" site setting: per-site routes and publish notifications on/off."""

import logging

import pytest
from django.contrib.auth import get_user_model

from tests.conftest import publish
from tests.factories import ArticlePageFactory
from wagtail_tasks import conf, tracking
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.notifications.models import Notification
from wagtail_tasks.site_settings import TaskSettings, TaskSettingsForm, backend_choices
from wagtail_tasks.testing import clear_enqueued, enqueued

pytestmark = pytest.mark.django_db


def test_without_a_site_or_setting_the_settings_route_is_used(site, settings):
    settings.WAGTAIL_TASKS = {"sending": {"backend": "database"}}
    assert conf.route_for("sending").backend == "database"
    assert conf.route_for("sending", site=site).backend == "database"
    assert not TaskSettings.objects.exists()  # reading never creates the row


def test_a_site_choice_wins_and_takes_effect_at_once(site, settings):
    settings.WAGTAIL_TASKS = {"sending": {"backend": "database"}}
    row = TaskSettings.objects.create(site=site, sending_backend="dummy")
    assert conf.route_for("sending", site=site).backend == "dummy"
    assert conf.route_for("sending", site=site.pk).backend == "dummy"
    assert conf.route_for("search", site=site).backend == "default"  # blank: settings
    row.sending_backend = ""
    row.save()
    assert conf.route_for("sending", site=site).backend == "database"


def test_a_removed_alias_falls_back_with_a_warning(site, settings, caplog):
    settings.WAGTAIL_TASKS = {"notifications": {"backend": "dummy"}}
    TaskSettings.objects.create(site=site, notifications_backend="gone")
    with caplog.at_level(logging.WARNING):
        assert conf.route_for("notifications", site=site).backend == "dummy"
    assert "'gone'" in caplog.text


def test_publishing_follows_the_site_setting_and_a_removed_alias_never_breaks_it(
    site, section, article, subscribers, outbox, django_capture_on_commit_callbacks
):
    clear_enqueued()
    TaskSettings.objects.create(site=site, notifications_backend="dummy")
    with django_capture_on_commit_callbacks(execute=True):
        publish(article)
    record = Notification.objects.get().record
    assert record.backend_alias == "dummy" and record.status == TaskStatus.QUEUED
    assert [r.args[0] for r in enqueued("notification")] == [record.pk]

    TaskSettings.objects.filter(site=site).update(notifications_backend="gone")
    with django_capture_on_commit_callbacks(execute=True):
        publish(ArticlePageFactory(title="Other news", parent=section))
    latest = Notification.objects.latest("pk").record
    assert latest.backend_alias == "default" and latest.status == TaskStatus.SUCCEEDED


def test_requeue_uses_the_site_route_of_the_record(site, settings):
    TaskSettings.objects.create(site=site, reports_backend="dummy")
    from tests.testapp.tasks import count_to

    record = TaskRecord.objects.create(
        kind="count",
        group="reports",
        site=site,
        status=TaskStatus.FAILED,
        task_path=count_to.module_path,
        args=[1],
    )
    assert tracking._enqueue_again(record, [TaskStatus.FAILED], None)
    record.refresh_from_db()
    assert record.backend_alias == "dummy"


def test_notifications_can_be_turned_off_per_site(
    site, article, subscribers, outbox, django_capture_on_commit_callbacks
):
    TaskSettings.objects.create(site=site, notify_on_publish=False)
    with django_capture_on_commit_callbacks(execute=True):
        publish(article)
    assert not Notification.objects.exists() and outbox == []


def test_the_form_offers_the_configured_aliases_with_their_capabilities(site, settings):
    choices = dict(backend_choices())
    assert set(choices) == {"", *settings.TASKS}
    assert "defer" in choices["rq"] and "results" in choices["rq"]
    assert "(no defer" in choices["default"]
    row = TaskSettings.objects.create(site=site, email_backend="gone")
    from wagtail.admin.panels import get_edit_handler

    form_class = get_edit_handler(TaskSettings).get_form_class()
    assert issubclass(form_class, TaskSettingsForm)
    form = form_class(instance=row)
    field = form.fields["email_backend"]
    assert "gone" in dict(field.widget.choices)
    assert "no longer configured" in field.help_text
    assert "Blank: default" in form.fields["search_backend"].help_text


def test_the_setting_is_editable_in_the_admin(client, site, settings):
    admin = get_user_model().objects.create_superuser("admin", "a@example.com", "pw")
    client.force_login(admin)
    url = f"/admin/settings/wagtail_tasks/tasksettings/{site.pk}/"
    response = client.get(url)
    assert response.status_code == 200
    assert b"rq \xe2\x80\x94 RQBackend" in response.content
    response = client.post(
        url,
        {
            "notify_on_publish": "on",
            "sending_backend": "database",
            "notifications_backend": "",
            "search_backend": "",
            "reports_backend": "",
            "email_backend": "",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    assert TaskSettings.objects.get(site=site).sending_backend == "database"
    response = client.post(url, {"notify_on_publish": "on", "sending_backend": "nope"})
    assert response.status_code == 200
    assert TaskSettings.objects.get(site=site).sending_backend == "database"
