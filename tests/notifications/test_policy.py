"""When a publication notifies: each publishing path and each Wagtail signal quirk."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from wagtail.models import GroupApprovalTask, Page, Revision, Workflow, WorkflowTask

from tests.conftest import publish
from tests.factories import (
    ArticlePageFactory,
    PlainPageFactory,
    SectionPageFactory,
    SubscriptionFactory,
    SuperuserFactory,
)
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.notifications.models import Notification, NotificationTrigger

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    """Run what was enqueued on commit (the immediate backend runs it in-process)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def recipients(outbox):
    return sorted(message.to[0] for message in outbox)


def test_first_publish_notifies_every_confirmed_subscriber_once(
    article, subscribers, outbox, run_tasks
):
    with run_tasks():
        publish(article)
    assert recipients(outbox) == sorted(s.email for s in subscribers)
    notification = Notification.objects.get()
    assert notification.trigger == NotificationTrigger.FIRST_PUBLISH
    assert notification.record.status == TaskStatus.SUCCEEDED
    assert (notification.record.progress_done, notification.record.progress_total) == (3, 3)
    assert notification.record.message == "3 sent, 0 failed, 0 skipped"


def test_republish_does_not_notify_again(article, subscribers, outbox, run_tasks):
    with run_tasks():
        publish(article)
    article.title = "Big news, corrected"
    with run_tasks():
        publish(article)  # a changed page
        publish(article)  # and an unchanged one: Wagtail fires page_published again
    assert len(outbox) == 3
    assert Notification.objects.count() == 1


def test_unpublish_and_publish_again_does_not_notify(article, subscribers, outbox, run_tasks):
    with run_tasks():
        publish(article)
    article.unpublish()
    with run_tasks():
        publish(article)
    assert len(outbox) == 3


def test_only_confirmed_subscribers_of_the_page_or_its_sections(
    section, article, outbox, run_tasks
):
    other_section = SectionPageFactory(title="Elsewhere")
    SubscriptionFactory(page=section, email="section@example.com")
    SubscriptionFactory(page=article, email="page@example.com", include_descendants=False)
    SubscriptionFactory(page=section, email="pending@example.com", status="pending")
    SubscriptionFactory(page=section, email="gone@example.com", status="unsubscribed")
    SubscriptionFactory(page=section, email="onlyindex@example.com", include_descendants=False)
    SubscriptionFactory(page=other_section, email="other@example.com")
    SubscriptionFactory(page=Page.objects.get(depth=1), email="everything@example.com")
    with run_tasks():
        publish(article)
    assert recipients(outbox) == [
        "everything@example.com",
        "page@example.com",
        "section@example.com",
    ]


def test_an_address_subscribed_twice_gets_one_email(section, article, outbox, run_tasks):
    SubscriptionFactory(page=section, email="twice@example.com")
    SubscriptionFactory(page=article, email="TWICE@example.com")
    with run_tasks():
        publish(article)
    assert len(outbox) == 1


def test_page_types_without_the_mixin_do_not_notify(section, subscribers, outbox, run_tasks):
    plain = PlainPageFactory(parent=section)
    with run_tasks():
        publish(plain)
    assert outbox == []
    assert not Notification.objects.exists()


def test_a_rolled_back_publish_enqueues_nothing(article, subscribers, outbox, run_tasks):
    with run_tasks() as callbacks:
        try:
            with transaction.atomic():
                publish(article)
                raise RuntimeError("the editor's request failed after publishing")
        except RuntimeError:
            pass
    assert callbacks == []
    assert outbox == []
    assert not Notification.objects.exists()
    assert not TaskRecord.objects.exists()


def test_publish_enqueues_only_after_commit(article, subscribers, outbox, run_tasks):
    with run_tasks() as callbacks:
        publish(article)
        # Inside the transaction: a QUEUED row exists, nothing has run or been sent.
        record = TaskRecord.objects.get(kind="notification")
        assert record.status == TaskStatus.QUEUED
        assert outbox == []
    assert callbacks[0].args[0] == record.pk
    record.refresh_from_db()
    assert record.status == TaskStatus.SUCCEEDED
    assert record.backend_alias == "default" and record.enqueued_at is not None


def test_scheduled_page_notifies_at_go_live_not_when_scheduled(
    article, subscribers, outbox, run_tasks
):
    article.go_live_at = timezone.now() + timedelta(days=1)
    with run_tasks():
        publish(article)  # page_published fires now, with live=False
    assert not article.live
    assert outbox == []
    assert not Notification.objects.exists()

    # Time passes: go-live is now in the past, for the revision and its content.
    past = timezone.now() - timedelta(minutes=1)
    revision = Revision.objects.get(approved_go_live_at__isnull=False)
    revision.content["go_live_at"] = past.isoformat()
    revision.approved_go_live_at = past
    revision.save()
    with run_tasks():
        call_command("publish_scheduled")
    article.refresh_from_db()
    assert article.live
    assert recipients(outbox) == sorted(s.email for s in subscribers)
    assert Notification.objects.get().trigger == NotificationTrigger.FIRST_PUBLISH


def test_alias_signals_do_not_send_duplicates(section, article, subscribers, outbox, run_tasks):
    other_section = SectionPageFactory(title="Mirror")
    SubscriptionFactory(page=other_section, email="mirror@example.com")
    alias = article.create_alias(parent=other_section)
    signals = []

    def count(sender, instance, **kwargs):
        signals.append(kwargs.get("alias", False))

    from wagtail.signals import page_published

    page_published.connect(count)
    try:
        with run_tasks():
            publish(article)
    finally:
        page_published.disconnect(count)
    assert signals == [False, True], "Wagtail sends one extra signal for the alias"
    # One notification, for the original page; its section's subscribers get one email each.
    assert list(Notification.objects.values_list("page_id", flat=True)) == [article.pk]
    assert recipients(outbox) == sorted(s.email for s in subscribers)
    assert alias.pk != article.pk


def test_workflow_approval_notifies(article, subscribers, outbox, run_tasks):
    moderator = SuperuserFactory(username="moderator")
    workflow = Workflow.objects.create(name="Review")
    task = GroupApprovalTask.objects.create(name="Approve")
    WorkflowTask.objects.create(workflow=workflow, task=task, sort_order=0)
    article.save_revision(user=moderator)
    workflow_state = workflow.start(article, moderator)
    assert not Notification.objects.exists()
    outbox.clear()  # Wagtail's own email to moderators
    with run_tasks():
        workflow_state.current_task_state.approve(user=moderator)
    article.refresh_from_db()
    assert article.live
    assert recipients(outbox) == sorted(s.email for s in subscribers)


def test_bulk_publish_from_the_admin_notifies(section, subscribers, outbox, run_tasks, client):
    articles = [ArticlePageFactory(parent=section, title=f"Bulk {n}") for n in range(2)]
    for page in articles:
        page.save_revision()
    client.force_login(SuperuserFactory(username="editor"))
    url = (
        reverse("wagtail_bulk_action", args=("wagtailcore", "page", "publish"))
        + "?"
        + "&".join(f"id={page.pk}" for page in articles)
    )
    with run_tasks():
        response = client.post(url, {"include_descendants": False})
    assert response.status_code == 302
    assert Notification.objects.count() == 2
    assert len(outbox) == 2 * len(subscribers)
    for subscriber in subscribers:
        assert recipients(outbox).count(subscriber.email) == 2


def test_editor_publish_button_notifies(article, subscribers, outbox, run_tasks, client):
    client.force_login(SuperuserFactory(username="editor"))
    with run_tasks():
        response = client.post(
            reverse("wagtailadmin_pages:edit", args=[article.pk]),
            {"title": article.title, "slug": article.slug, "body": "[]", "action-publish": "1"},
        )
    assert response.status_code == 302, response.content[:2000]
    assert recipients(outbox) == sorted(s.email for s in subscribers)


def test_editor_can_ask_to_notify_on_a_later_publish(
    article, subscribers, outbox, run_tasks, client
):
    with run_tasks():
        publish(article)
    assert len(outbox) == 3
    editor = SuperuserFactory(username="editor")
    client.force_login(editor)
    edit_url = reverse("wagtailadmin_pages:edit", args=[article.pk])
    assert "Publish and notify subscribers" in client.get(edit_url).content.decode()
    data = {"title": "Big news, part two", "slug": article.slug, "body": "[]"}
    with run_tasks():
        client.post(edit_url, {**data, "action-publish": "1"})  # plain republish
    assert len(outbox) == 3
    with run_tasks():
        response = client.post(edit_url, {**data, "action-publish": "notify"})
    assert response.status_code == 302
    assert len(outbox) == 6
    requested = Notification.objects.get(trigger=NotificationTrigger.REQUESTED)
    assert requested.requested_by == editor
    assert requested.record.requested_by == editor
    assert requested.page_title == "Big news, part two"


def test_publish_and_notify_is_not_offered_for_pages_without_the_mixin(section, client):
    plain = PlainPageFactory(parent=section)
    client.force_login(SuperuserFactory(username="editor"))
    content = client.get(reverse("wagtailadmin_pages:edit", args=[plain.pk])).content.decode()
    assert "Publish and notify subscribers" not in content
    assert "action-publish" in content


def test_asking_twice_for_the_same_revision_sends_once(article, subscribers, outbox, run_tasks):
    from wagtail_tasks.notifications.policy import notify_subscribers

    with run_tasks():
        publish(article)
        first = notify_subscribers(article, article.live_revision, NotificationTrigger.REQUESTED)
        second = notify_subscribers(article, article.live_revision, NotificationTrigger.REQUESTED)
    assert first == second
    assert len(outbox) == 3
