"""The public subscribe endpoint under abuse: rate limits, no way to learn who subscribed,
no header injection through addresses or titles."""

import pytest
from django.test import Client

from tests.conftest import publish
from tests.factories import ArticlePageFactory, SectionPageFactory, SubscriptionFactory
from tests.notifications.test_views import SUBSCRIBE_URL, subscribe
from wagtail_tasks.notifications import ratelimit
from wagtail_tasks.notifications.forms import SubscribeForm
from wagtail_tasks.notifications.models import Delivery, DeliveryStatus, Subscription


def post_from(address, email, page):
    return Client(REMOTE_ADDR=address).post(SUBSCRIBE_URL, {"email": email, "page": page.pk})


def test_one_client_is_refused_after_its_limit_and_others_are_not(section, outbox, settings):
    settings.WAGTAIL_TASKS_SUBSCRIBE_LIMIT_PER_CLIENT = (3, 3600)
    answers = [post_from("203.0.113.7", f"r{n}@example.com", section).status_code for n in range(5)]
    assert answers == [200, 200, 200, 429, 429]
    refused = post_from("203.0.113.7", "late@example.com", section)
    assert "Too many subscription requests" in refused.content.decode()
    # Nothing was recorded for refused requests ...
    assert sorted(Subscription.objects.values_list("email", flat=True)) == [
        "r0@example.com",
        "r1@example.com",
        "r2@example.com",
    ]
    # ... and another client is served as usual.
    assert post_from("198.51.100.2", "other@example.com", section).status_code == 200


def test_the_client_limit_counts_only_posts(section, settings):
    settings.WAGTAIL_TASKS_SUBSCRIBE_LIMIT_PER_CLIENT = (1, 3600)
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(3):
        assert client.get(SUBSCRIBE_URL, {"page": section.pk}).status_code == 200
    assert (
        client.post(SUBSCRIBE_URL, {"email": "a@example.com", "page": section.pk}).status_code
        == 200
    )
    assert (
        client.post(SUBSCRIBE_URL, {"email": "b@example.com", "page": section.pk}).status_code
        == 429
    )


def test_a_new_window_serves_the_client_again(section, settings, monkeypatch):
    settings.WAGTAIL_TASKS_SUBSCRIBE_LIMIT_PER_CLIENT = (1, 60)
    now = 1_000_020.0
    monkeypatch.setattr(ratelimit.time, "time", lambda: now)
    assert post_from("203.0.113.7", "a@example.com", section).status_code == 200
    assert post_from("203.0.113.7", "b@example.com", section).status_code == 429
    now += 60
    assert post_from("203.0.113.7", "c@example.com", section).status_code == 200


def test_confirmation_emails_to_one_address_are_throttled_across_pages(
    client, site, outbox, settings, django_capture_on_commit_callbacks
):
    settings.WAGTAIL_TASKS_CONFIRM_LIMIT_PER_ADDRESS = (2, 3600)
    pages = [SectionPageFactory(title=f"Section {n}", parent=site.root_page) for n in range(4)]
    answers = [
        subscribe(client, django_capture_on_commit_callbacks, "Victim@Example.com", page)
        for page in pages
    ]
    answers.append(
        subscribe(client, django_capture_on_commit_callbacks, "victim@example.com", pages[0])
    )
    # Someone fills in another person's address everywhere: two emails reach it, not five.
    assert len(outbox) == 2
    # The same answer whether an email went or not: the first request for the first page
    # (emailed) and the last one (throttled) get the same page, byte for byte.
    assert {a.status_code for a in answers} == {200}
    assert answers[0].content == answers[-1].content
    # The subscriptions wait, pending: a later request, in a new window, emails them.
    assert Subscription.objects.filter(status="pending").count() == 4


def test_a_throttled_address_looks_like_a_new_one(
    client, section, outbox, settings, django_capture_on_commit_callbacks
):
    settings.WAGTAIL_TASKS_CONFIRM_LIMIT_PER_ADDRESS = (1, 3600)
    subscribe(client, django_capture_on_commit_callbacks, "known@example.com", section)
    throttled = subscribe(client, django_capture_on_commit_callbacks, "known@example.com", section)
    fresh = subscribe(client, django_capture_on_commit_callbacks, "new@example.com", section)
    assert throttled.status_code == fresh.status_code == 200
    assert throttled.content == fresh.content
    assert [m.to for m in outbox] == [["known@example.com"], ["new@example.com"]]


def test_rate_limit_keys_hold_no_address(section, settings):
    from django.core.cache import cache

    post_from("203.0.113.7", "secret.person@example.com", section)
    keys = list(cache._cache.keys())  # the locmem cache of the test settings
    assert keys, "the counters are in the cache"
    assert not any("secret.person" in key or "203.0.113.7" in key for key in keys)


def test_limits_can_be_switched_off(section, outbox, settings):
    settings.WAGTAIL_TASKS_SUBSCRIBE_LIMIT_PER_CLIENT = None
    assert all(
        post_from("203.0.113.7", f"r{n}@example.com", section).status_code == 200 for n in range(30)
    )


@pytest.mark.parametrize(
    "email",
    [
        "reader@example.com\nBcc: everyone@example.com",
        "reader@example.com\r\nSubject: spam",
        "reader@example.com,other@example.com",
        "Reader <reader@example.com>",
    ],
)
def test_addresses_that_would_add_headers_or_recipients_are_refused(section, email):
    form = SubscribeForm({"email": email, "page": section.pk})
    assert not form.is_valid()
    assert "email" in form.errors


def test_an_injected_address_stored_by_other_means_is_skipped_not_sent(
    section, outbox, django_capture_on_commit_callbacks
):
    # A row written around the form (an import, the shell) still cannot add a header.
    SubscriptionFactory(page=section, email="x@example.com\nBcc: everyone@example.com")
    SubscriptionFactory(page=section, email="fine@example.com")
    article = ArticlePageFactory(title="Hello\r\nBcc: everyone@example.com", parent=section)
    with django_capture_on_commit_callbacks(execute=True):
        publish(article)
    assert [m.to for m in outbox] == [["fine@example.com"]]
    message = outbox[0].message()
    assert message["Subject"] == outbox[0].subject
    assert "\n" not in outbox[0].subject and "\r" not in outbox[0].subject
    assert message["Bcc"] is None
    skipped = Delivery.objects.get(status=DeliveryStatus.SKIPPED)
    assert skipped.reason.startswith("Invalid email address")
