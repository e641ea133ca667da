"""The page editor's "Background tasks" panel: figures, live refresh, actions, permissions."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone
from wagtail.models import GroupPagePermission, PageLogEntry

from tests.conftest import publish
from tests.factories import (
    ArticlePageFactory,
    SectionPageFactory,
    SubscriptionFactory,
    SuperuserFactory,
    UserFactory,
)
from wagtail_tasks.admin.page_tasks import (
    LOG_CANCEL,
    LOG_RETRY,
    LOG_SEND,
    NOTIFICATIONS_SHOWN,
    page_tasks,
)
from wagtail_tasks.kinds import register_kind
from wagtail_tasks.models import TaskRecord, TaskStatus, target_content_type
from wagtail_tasks.notifications.models import (
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationTrigger,
)

pytestmark = pytest.mark.django_db

KIND_REINDEX = register_kind("tests.reindex", "Search index update")


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def admin_user():
    return SuperuserFactory(username="admin")


def editor_of(page, username):
    """A Wagtail editor who may edit ``page`` and the pages below it, and nothing else."""
    user = UserFactory(username=username)
    group = Group.objects.create(name=f"editors-{username}")
    group.permissions.add(Permission.objects.get(codename="access_admin"))
    for permission_type in ("add", "change", "publish"):
        GroupPagePermission.objects.create(group=group, page=page, permission_type=permission_type)
    user.groups.add(group)
    return user


def status_url(page):
    return reverse("wagtail_tasks_admin:page_tasks", args=[page.pk])


def retry_url(notification):
    return reverse(
        "wagtail_tasks_admin:retry_deliveries", args=[notification.page_id, notification.pk]
    )


def cancel_url(notification):
    return reverse(
        "wagtail_tasks_admin:cancel_notification", args=[notification.page_id, notification.pk]
    )


def send_url(page):
    return reverse("wagtail_tasks_admin:send_notification", args=[page.pk])


def edit_url(page):
    return reverse("wagtailadmin_pages:edit", args=[page.pk])


def get_status(client, page):
    response = client.get(status_url(page))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


@pytest.fixture
def queued_sending(settings):
    """Fan-out runs in-process; send batches wait on the dummy backend (nothing is sent)."""
    settings.WAGTAIL_TASKS = {"sending": {"backend": "dummy"}}


def the_notification(page):
    return Notification.objects.select_related("record").get(page=page)


# The panel in the editor ----------------------------------------------------------------------


def test_editor_shows_the_tasks_tab_with_controller_and_media(client, admin_user, article):
    client.force_login(admin_user)
    content = client.get(edit_url(article)).content.decode()
    assert 'id="tab-tasks"' in content
    assert 'data-controller="wagtail-tasks-panel"' in content
    assert 'data-wagtail-tasks-panel-active="false"' in content
    assert f'data-wagtail-tasks-panel-url-value="{status_url(article)}"' in content
    assert "wagtail_tasks/js/tasks-panel.js" in content
    assert "wagtail_tasks/css/tasks-panel.css" in content
    # No form field of ours inside the editor form.
    panel = content[content.index('data-controller="wagtail-tasks-panel"') :]
    panel = panel[: panel.index("</section>")]
    for tag in ("<input", "<select", "<textarea", "<button", "<form"):
        assert tag not in panel


def test_the_create_view_has_no_tasks_panel(client, admin_user, section):
    client.force_login(admin_user)
    url = reverse("wagtailadmin_pages:add", args=["testapp", "articlepage", section.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert 'data-controller="wagtail-tasks-panel"' not in response.content.decode()


def test_finished_notification_figures(client, admin_user, article, subscribers, run_tasks):
    with run_tasks():
        publish(article)
    client.force_login(admin_user)
    data = get_status(client, article)
    assert data["active"] is False
    html = data["html"]
    assert 'class="wagtail-tasks-progress" data-kind="notification" data-percent="100"' in html
    assert "3 of 3 sent" in html
    assert '<dd data-count="failed">0</dd>' in html
    assert '<dd data-count="skipped">0</dd>' in html
    assert "Finished" in html and "Time left" not in html


def test_running_notification_figures_and_time_left(
    client, admin_user, article, section, queued_sending, run_tasks
):
    SubscriptionFactory.create_batch(4, page=section)
    with run_tasks():
        publish(article)
    notification = the_notification(article)
    assert notification.record.status == TaskStatus.RUNNING
    client.force_login(admin_user)

    data = get_status(client, article)
    assert data["active"] is True
    assert 'data-kind="notification" data-percent="0"' in data["html"]
    assert "0 of 4 sent" in data["html"]

    first, second, *_ = Delivery.objects.filter(notification=notification).order_by("pk")
    Delivery.objects.filter(pk=first.pk).update(status=DeliveryStatus.SENT)
    Delivery.objects.filter(pk=second.pk).update(status=DeliveryStatus.FAILED, reason="550 nope")
    TaskRecord.objects.filter(pk=notification.record_id).update(
        started_at=timezone.now() - timedelta(seconds=20)
    )
    data = get_status(client, article)
    assert data["active"] is True
    assert 'data-percent="50"' in data["html"]
    assert "1 of 4 sent" in data["html"]
    assert '<dd data-count="failed">1</dd>' in data["html"]
    # Two done in 20 s, two left: about 20 s to go.
    item = page_tasks(article).notifications[0]
    assert 19 <= item.time_left.total_seconds() <= 21
    assert "Time left" in data["html"] and "about 20 s" in data["html"]


def test_progress_counts_subscribers_not_yet_reached_and_is_full_only_at_the_end(
    client, admin_user, article
):
    publish(article)  # the fan-out waits: no delivery yet
    notification = the_notification(article)
    TaskRecord.objects.filter(pk=notification.record_id).update(
        status=TaskStatus.RUNNING, progress_total=10
    )
    make_deliveries(notification, 3)  # sent, sent, failed
    client.force_login(admin_user)
    html = get_status(client, article)["html"]
    assert 'data-kind="notification" data-percent="30"' in html
    assert "2 of 10 sent" in html

    # All created deliveries done, but the fan-out still running: not full yet.
    Notification.objects.filter(pk=notification.pk).update(fanned_out_at=timezone.now())
    Delivery.objects.filter(notification=notification).update(status=DeliveryStatus.SENT)
    assert 'data-percent="99"' in get_status(client, article)["html"]
    TaskRecord.objects.filter(pk=notification.record_id).update(status=TaskStatus.SUCCEEDED)
    data = get_status(client, article)
    assert 'data-percent="100"' in data["html"] and "3 of 3 sent" in data["html"]
    assert data["active"] is False


def test_the_panel_in_the_editor_says_active_while_sending(
    client, admin_user, article, subscribers, queued_sending, run_tasks
):
    with run_tasks():
        publish(article)
    client.force_login(admin_user)
    content = client.get(edit_url(article)).content.decode()
    assert 'data-wagtail-tasks-panel-active="true"' in content
    assert "0 of 3 sent" in content


def test_error_of_a_failed_notification_is_shown(client, admin_user, article, subscribers):
    publish(article)  # no on_commit here: the fan-out never runs
    notification = the_notification(article)
    TaskRecord.objects.filter(pk=notification.record_id).update(
        status=TaskStatus.FAILED,
        error="TemplateSyntaxError: broken email template",
        finished_at=timezone.now(),
    )
    client.force_login(admin_user)
    data = get_status(client, article)
    assert data["active"] is False
    assert "TemplateSyntaxError: broken email template" in data["html"]
    assert "Failed" in data["html"]


def test_other_tracking_rows_are_shown_generically(client, admin_user, article):
    TaskRecord.objects.create(
        kind=KIND_REINDEX,
        target_content_type=target_content_type(article),
        target_object_id=str(article.pk),
        status=TaskStatus.RUNNING,
        progress_done=3,
        progress_total=12,
        message="Indexing translations",
    )
    TaskRecord.objects.create(
        kind="tests.unknown_kind",
        target_content_type=target_content_type(article),
        target_object_id=str(article.pk),
        status=TaskStatus.FAILED,
        error="Boom: the report could not be written",
    )
    other_page = ArticlePageFactory(parent=article.get_parent(), title="Elsewhere")
    TaskRecord.objects.create(
        kind=KIND_REINDEX,
        target_content_type=target_content_type(other_page),
        target_object_id=str(other_page.pk),
        message="About another page",
    )
    client.force_login(admin_user)
    data = get_status(client, article)
    html = data["html"]
    assert data["active"] is True
    assert "Search index update" in html and "Running" in html
    assert 'data-kind="tests.reindex" data-percent="25"' in html
    assert "3 of 12" in html and "Indexing translations" in html
    assert "tests.unknown_kind" in html  # an unregistered kind reads as its code
    assert "Boom: the report could not be written" in html
    assert "About another page" not in html


def test_the_endpoint_stops_being_active_when_all_finished(client, admin_user, article):
    record = TaskRecord.objects.create(
        kind=KIND_REINDEX,
        target_content_type=target_content_type(article),
        target_object_id=str(article.pk),
        status=TaskStatus.QUEUED,
    )
    client.force_login(admin_user)
    assert get_status(client, article)["active"] is True
    TaskRecord.objects.filter(pk=record.pk).update(status=TaskStatus.SUCCEEDED)
    data = get_status(client, article)
    assert data["active"] is False
    assert 'data-kind="tests.reindex" data-percent="100"' in data["html"]


# Query bound --------------------------------------------------------------------------------------


def make_deliveries(notification, count):
    statuses = [
        DeliveryStatus.SENT,
        DeliveryStatus.SENT,
        DeliveryStatus.FAILED,
        DeliveryStatus.SKIPPED,
        DeliveryStatus.PENDING,
    ]
    Delivery.objects.bulk_create(
        Delivery(notification=notification, email_key=f"key-{i}", status=statuses[i % 5])
        for i in range(count)
    )


# Session, user, its two permission lookups and profile (Wagtail's admin access check), the
# page, its group page permissions; then ours: notifications, delivery counts (one aggregate
# for all shown), other rows, "anything unfinished?", "live revision notified?".
QUERY_BOUND = 12


@pytest.mark.parametrize("deliveries", [0, 500])
def test_the_endpoint_makes_a_constant_number_of_queries(
    client, article, deliveries, django_assert_max_num_queries
):
    publish(article)
    editor = editor_of(article.get_parent(), "bounded")
    client.force_login(editor)
    notification = the_notification(article)
    make_deliveries(notification, deliveries)
    # More notifications than are shown, each with deliveries, and other rows.
    for _ in range(NOTIFICATIONS_SHOWN + 2):
        other = Notification.objects.create(
            page=article, page_title="x", trigger=NotificationTrigger.REQUESTED
        )
        make_deliveries(other, deliveries // 10)
    for _ in range(15):
        TaskRecord.objects.create(
            kind=KIND_REINDEX,
            target_content_type=target_content_type(article),
            target_object_id=str(article.pk),
        )
    client.get(status_url(article))  # warm the content type cache
    with django_assert_max_num_queries(QUERY_BOUND):
        data = get_status(client, article)
    assert data["html"].count('data-kind="notification"') == NOTIFICATIONS_SHOWN
    if deliveries:
        # The first notification is the oldest: not among the five shown.
        shown = data["html"].count(f"{deliveries // 10 * 2 // 5} of {deliveries // 10} sent")
        assert shown == NOTIFICATIONS_SHOWN


def test_figures_at_500_deliveries(client, admin_user, article):
    publish(article)
    notification = the_notification(article)
    make_deliveries(notification, 500)
    item = page_tasks(article).notifications[0]
    assert (item.total, item.sent, item.failed, item.skipped, item.unfinished) == (
        500,
        200,
        100,
        100,
        100,
    )
    assert item.percent == 80
    client.force_login(admin_user)
    assert "200 of 500 sent" in get_status(client, article)["html"]


# Actions ------------------------------------------------------------------------------------------


def test_retry_sends_the_failed_deliveries_again(
    client, admin_user, article, subscribers, outbox, run_tasks
):
    with run_tasks():
        publish(article)
    assert len(outbox) == 3
    notification = the_notification(article)
    failed = Delivery.objects.filter(notification=notification).order_by("pk").first()
    Delivery.objects.filter(pk=failed.pk).update(
        status=DeliveryStatus.FAILED, reason="Recipient refused: 550"
    )
    outbox.clear()
    client.force_login(admin_user)
    assert 'id="wagtail-tasks-retry-' in get_status(client, article)["html"]

    confirm = client.get(retry_url(notification))
    assert confirm.status_code == 200
    assert "Send the 1 failed emails" in confirm.content.decode()
    assert outbox == []  # asking is not doing

    with run_tasks():
        response = client.post(retry_url(notification))
    assert response.status_code == 302
    assert response["Location"] == f"{edit_url(article)}#tab-tasks"
    assert [m.to for m in outbox] == [[failed.subscription.email]]
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.SENT
    notification.record.refresh_from_db()
    assert notification.record.status == TaskStatus.SUCCEEDED
    assert Delivery.objects.filter(notification=notification, status="sent").count() == 3
    entry = PageLogEntry.objects.get(page=article, action=LOG_RETRY)
    assert entry.user == admin_user
    assert entry.data == {"notification": notification.pk, "deliveries": 1}
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("being sent again" in m for m in messages)


def test_retry_also_resends_what_a_failed_batch_left_pending(
    client, admin_user, article, subscribers, outbox, queued_sending, run_tasks, settings
):
    with run_tasks():
        publish(article)
    notification = the_notification(article)
    batch = TaskRecord.objects.get(parent=notification.record, kind="notification.send")
    TaskRecord.objects.filter(pk=batch.pk).update(
        status=TaskStatus.FAILED, error="SMTP down", finished_at=timezone.now()
    )
    Delivery.objects.filter(pk=Delivery.objects.filter(batch=batch).first().pk).update(
        status=DeliveryStatus.FAILED
    )
    settings.WAGTAIL_TASKS = {}  # send in-process again
    client.force_login(admin_user)
    with run_tasks():
        client.post(retry_url(notification))
    assert len(outbox) == 3
    assert set(
        Delivery.objects.filter(notification=notification).values_list("status", flat=True)
    ) == {DeliveryStatus.SENT}
    notification.record.refresh_from_db()
    assert notification.record.status == TaskStatus.SUCCEEDED


def test_retry_runs_a_notification_again_that_failed_before_its_fan_out(
    client, admin_user, article, subscribers, outbox, run_tasks
):
    publish(article)  # no on_commit: the fan-out never ran
    notification = the_notification(article)
    TaskRecord.objects.filter(pk=notification.record_id).update(
        status=TaskStatus.FAILED, error="TemplateDoesNotExist", finished_at=timezone.now()
    )
    client.force_login(admin_user)
    html = get_status(client, article)["html"]
    assert "Run again" in html
    assert "not been emailed yet" in client.get(retry_url(notification)).content.decode()
    with run_tasks():
        response = client.post(retry_url(notification))
    assert response.status_code == 302
    assert len(outbox) == 3
    notification.record.refresh_from_db()
    assert notification.record.status == TaskStatus.SUCCEEDED
    entry = PageLogEntry.objects.get(page=article, action=LOG_RETRY)
    assert entry.data["fan_out"] is True
    history = client.get(reverse("wagtailadmin_pages:history", args=[article.pk]))
    assert "Ran the failed subscriber notification again" in history.content.decode()


def test_retry_with_nothing_failed_does_nothing(
    client, admin_user, article, subscribers, outbox, run_tasks
):
    with run_tasks():
        publish(article)
    outbox.clear()
    notification = the_notification(article)
    client.force_login(admin_user)
    with run_tasks():
        response = client.post(retry_url(notification))
    assert response.status_code == 302
    assert outbox == []
    assert not PageLogEntry.objects.filter(action=LOG_RETRY).exists()


def test_cancel_skips_what_is_pending_and_keeps_what_was_sent(
    client, admin_user, article, subscribers, outbox, queued_sending, run_tasks
):
    with run_tasks():
        publish(article)
    notification = the_notification(article)
    sent = Delivery.objects.filter(notification=notification).order_by("pk").first()
    Delivery.objects.filter(pk=sent.pk).update(status=DeliveryStatus.SENT)
    client.force_login(admin_user)
    assert f'id="wagtail-tasks-cancel-{notification.pk}"' in get_status(client, article)["html"]
    assert client.get(cancel_url(notification)).status_code == 200

    with run_tasks():
        response = client.post(cancel_url(notification))
    assert response.status_code == 302
    statuses = dict(Delivery.objects.filter(notification=notification).values_list("pk", "status"))
    assert statuses.pop(sent.pk) == DeliveryStatus.SENT
    assert set(statuses.values()) == {DeliveryStatus.SKIPPED}
    reasons = set(Delivery.objects.filter(pk__in=list(statuses)).values_list("reason", flat=True))
    assert reasons == {"Cancelled by admin"}
    record = TaskRecord.objects.get(pk=notification.record_id)
    assert record.status == TaskStatus.CANCELLED and record.finished_at
    children = TaskRecord.objects.filter(parent=record)
    assert children.exists()
    assert set(children.values_list("status", flat=True)) == {TaskStatus.CANCELLED}
    assert outbox == []
    entry = PageLogEntry.objects.get(page=article, action=LOG_CANCEL)
    assert entry.user == admin_user and entry.data["skipped"] == 2
    data = get_status(client, article)
    assert data["active"] is False
    assert "Cancelled" in data["html"]
    assert "wagtail-tasks-cancel-" not in data["html"]

    # Cancelling again changes nothing and logs nothing more.
    client.post(cancel_url(notification))
    assert PageLogEntry.objects.filter(action=LOG_CANCEL).count() == 1


def test_send_notifies_about_the_live_revision(
    client, admin_user, article, subscribers, outbox, run_tasks
):
    with run_tasks():
        publish(article)
        publish(article)  # a republish notifies nobody by default
    assert len(outbox) == 3
    outbox.clear()
    client.force_login(admin_user)
    html = get_status(client, article)["html"]
    assert send_url(article) in html
    edit = client.get(edit_url(article)).content.decode()
    assert send_url(article) in edit  # a page header button too
    assert f"{edit_url(article)}#tab-tasks" in edit
    assert client.get(send_url(article)).status_code == 200

    with run_tasks():
        response = client.post(send_url(article))
    assert response.status_code == 302
    article.refresh_from_db()
    notification = Notification.objects.get(page=article, revision=article.live_revision)
    assert notification.trigger == NotificationTrigger.REQUESTED
    assert notification.requested_by == admin_user
    assert len(outbox) == 3
    entry = PageLogEntry.objects.get(page=article, action=LOG_SEND)
    assert entry.data == {"notification": notification.pk, "revision": article.live_revision_id}
    assert send_url(article) not in get_status(client, article)["html"]

    # Asking again sends nothing more.
    with run_tasks():
        client.post(send_url(article))
    assert len(outbox) == 3
    assert PageLogEntry.objects.filter(action=LOG_SEND).count() == 1


def test_send_refuses_a_page_that_is_not_live(client, admin_user, article, subscribers, outbox):
    client.force_login(admin_user)
    response = client.post(send_url(article))
    assert response.status_code == 302
    assert not Notification.objects.exists()
    assert not PageLogEntry.objects.filter(action=LOG_SEND).exists()


def test_actions_show_in_the_page_history(client, admin_user, article, subscribers, run_tasks):
    with run_tasks():
        publish(article)
        publish(article)
    client.force_login(admin_user)
    with run_tasks():
        client.post(send_url(article))
    content = client.get(reverse("wagtailadmin_pages:history", args=[article.pk])).content
    assert "Asked for subscribers to be notified about the live version" in content.decode()


# Permissions --------------------------------------------------------------------------------------


@pytest.fixture
def endpoints(article, subscribers, queued_sending, run_tasks):
    """Every panel endpoint with the method to call it, for a page with a running notification."""
    with run_tasks():
        publish(article)
        publish(article)  # a second revision: "send" has something to do
    first = the_notification(article)
    Delivery.objects.filter(notification=first).update(status=DeliveryStatus.FAILED)
    return [
        ("get", status_url(article)),
        ("get", retry_url(first)),
        ("post", retry_url(first)),
        ("get", cancel_url(first)),
        ("post", cancel_url(first)),
        ("get", send_url(article)),
        ("post", send_url(article)),
    ]


def test_anonymous_is_sent_to_the_login_page(client, endpoints):
    for method, url in endpoints:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("wagtailadmin_login")), url
    assert not PageLogEntry.objects.filter(action__startswith="wagtail_tasks.").exists()


def test_an_editor_of_another_section_gets_403(client, site, endpoints, article):
    elsewhere = SectionPageFactory(title="Sport", parent=site.root_page)
    client.force_login(editor_of(elsewhere, "sport-editor"))
    for method, url in endpoints:
        assert getattr(client, method)(url).status_code == 403, url
    # Nothing happened: no retry, no cancel, no new notification, nothing logged.
    assert not PageLogEntry.objects.filter(action__startswith="wagtail_tasks.").exists()
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.FAILED}
    assert the_notification(article).record.status == TaskStatus.RUNNING
    assert the_notification_count(article) == 1
    content = client.get(edit_url(article))
    assert content.status_code in (302, 403)


def the_notification_count(page):
    return Notification.objects.filter(page=page).count()


@pytest.mark.parametrize("who", ["editor", "superuser"])
def test_editors_of_the_page_and_superusers_may_use_everything(
    client, endpoints, article, section, who
):
    user = editor_of(section, "news-editor") if who == "editor" else SuperuserFactory()
    client.force_login(user)
    for method, url in endpoints:
        response = getattr(client, method)(url)
        assert response.status_code == (200 if method == "get" else 302), url
    actions = set(
        PageLogEntry.objects.filter(page=article, user=user).values_list("action", flat=True)
    )
    assert {LOG_RETRY, LOG_CANCEL, LOG_SEND} <= actions
    assert the_notification_count(article) == 2


def test_header_buttons_only_for_those_who_can_edit(client, site, article, subscribers, run_tasks):
    with run_tasks():
        publish(article)
        publish(article)
    explorer = reverse("wagtailadmin_explore", args=[article.pk])
    client.force_login(editor_of(article.get_parent(), "header-editor"))
    content = client.get(explorer).content.decode()
    assert send_url(article) in content
    elsewhere = SectionPageFactory(title="Culture", parent=site.root_page)
    client.force_login(editor_of(elsewhere, "culture-editor"))
    response = client.get(explorer)
    assert send_url(article) not in response.content.decode()
