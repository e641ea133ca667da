"""What is kept, for how long, and what a departing subscriber leaves behind."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.conftest import publish
from tests.factories import SubscriptionFactory
from tests.notifications.test_views import unsubscribe_url
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.notifications.models import (
    ERASED_REASON,
    Delivery,
    DeliveryStatus,
    Notification,
    Subscription,
    SubscriptionStatus,
    email_key,
)
from wagtail_tasks.retention import prune

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def notified(section, article, outbox, run_tasks):
    """A finished notification to three subscribers, one of them refused with a reason."""
    subscribers = SubscriptionFactory.create_batch(3, page=section)
    with run_tasks():
        publish(article)
    Delivery.objects.filter(subscription=subscribers[0]).update(
        status=DeliveryStatus.FAILED,
        reason=f"Recipient refused: 550 <{subscribers[0].email}> mailbox unavailable",
    )
    return subscribers


def deliveries_mention(subscription) -> bool:
    rows = Delivery.objects.values_list("email_key", "reason")
    return any(
        key == email_key(subscription.email) or subscription.email in reason for key, reason in rows
    )


def test_unsubscribing_by_link_erases_the_address_from_delivery_rows(client, notified):
    leaver = notified[0]
    assert deliveries_mention(leaver)
    client.post(unsubscribe_url(leaver))
    assert Subscription.objects.get(pk=leaver.pk).status == SubscriptionStatus.UNSUBSCRIBED
    assert not deliveries_mention(leaver)
    delivery = Delivery.objects.get(subscription=leaver)
    # The count stays true: still one failed delivery, with no detail about whom.
    assert (delivery.status, delivery.reason) == (DeliveryStatus.FAILED, ERASED_REASON)
    assert delivery.email_key == f"erased:{delivery.pk}"
    # The others are untouched.
    assert all(deliveries_mention(s) for s in notified[1:])


def test_unsubscribing_in_the_admin_or_in_code_erases_too(notified):
    leaver = notified[1]
    leaver.status = SubscriptionStatus.UNSUBSCRIBED
    leaver.save()
    assert not deliveries_mention(leaver)


def test_deleting_a_subscription_leaves_no_address_in_its_deliveries(notified):
    leaver = notified[2]
    leaver.delete()
    assert not deliveries_mention(leaver)
    assert Delivery.objects.filter(subscription__isnull=True).count() == 1
    assert Delivery.objects.count() == 3


def test_prune_keeps_everything_young(notified):
    pruned = prune()
    assert (pruned.tasks, pruned.deliveries, pruned.subscriptions) == (0, 0, 0)
    assert Delivery.objects.count() == 3


def test_prune_deletes_old_deliveries_and_tracking_rows_but_keeps_notifications(notified):
    notification = Notification.objects.get()
    in_100_days = timezone.now() + timedelta(days=100)
    pruned = prune(now=in_100_days)
    assert (pruned.deliveries, pruned.tasks) == (3, 2)  # the fan-out and its one batch
    assert not Delivery.objects.exists() and not TaskRecord.objects.exists()
    # The notification stays: it is what makes a revision notify only once.
    assert Notification.objects.get() == notification


def test_prune_honours_each_age(notified, settings):
    settings.WAGTAIL_TASKS_KEEP_DELIVERIES_FOR = 5
    settings.WAGTAIL_TASKS_KEEP_TASKS_FOR = None  # forever
    pruned = prune(now=timezone.now() + timedelta(days=6))
    assert (pruned.deliveries, pruned.tasks) == (3, 0)
    assert TaskRecord.objects.count() == 2


def test_prune_leaves_unfinished_work_alone(notified):
    TaskRecord.objects.update(status=TaskStatus.RUNNING)
    pruned = prune(now=timezone.now() + timedelta(days=365))
    assert (pruned.deliveries, pruned.tasks) == (0, 0)


def test_prune_deletes_departed_and_never_confirmed_subscriptions(section, settings):
    now = timezone.now()
    left_long_ago = SubscriptionFactory(
        page=section,
        status=SubscriptionStatus.UNSUBSCRIBED,
        unsubscribed_at=now - timedelta(days=31),
    )
    left_lately = SubscriptionFactory(
        page=section,
        status=SubscriptionStatus.UNSUBSCRIBED,
        unsubscribed_at=now - timedelta(days=2),
    )
    never_confirmed = SubscriptionFactory(page=section, status=SubscriptionStatus.PENDING)
    Subscription.objects.filter(pk=never_confirmed.pk).update(created_at=now - timedelta(days=31))
    waiting = SubscriptionFactory(page=section, status=SubscriptionStatus.PENDING)
    confirmed = SubscriptionFactory(page=section)
    Subscription.objects.filter(pk=confirmed.pk).update(created_at=now - timedelta(days=400))

    assert prune().subscriptions == 2
    assert set(Subscription.objects.all()) == {left_lately, waiting, confirmed}
    assert not Subscription.objects.filter(pk__in=[left_long_ago.pk, never_confirmed.pk]).exists()


def test_the_prune_command_says_what_it_deleted(notified, capsys, settings):
    settings.WAGTAIL_TASKS_KEEP_DELIVERIES_FOR = 0
    settings.WAGTAIL_TASKS_KEEP_TASKS_FOR = 0
    call_command("wagtail_tasks_prune")
    assert (
        "Deleted 0 expired report file(s), 2 tracking row(s), 3 delivery row(s), 0 subscription(s)."
        in capsys.readouterr().out
    )
