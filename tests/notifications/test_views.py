"""The public subscription flow: subscribe (double opt-in), confirm and unsubscribe.

Every request runs the real views, the real tasks (on the in-process immediate backend) and
sends real messages to Django's locmem outbox.
"""

import json
import re
import time
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.template import RequestContext, Template
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone
from wagtail.models import PageViewRestriction

from tests.conftest import publish
from tests.factories import (
    ArticlePageFactory,
    SectionPageFactory,
    SubscriptionFactory,
    UserFactory,
)
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.notifications import tokens
from wagtail_tasks.notifications.models import Subscription, SubscriptionStatus
from wagtail_tasks.notifications.tasks import KIND_CONFIRM, send_confirmation
from wagtail_tasks.task_api import DUMMY_BACKEND, task_backends

SUBSCRIBE_URL = "/subscriptions/subscribe/"
CONFIRM_SALT = "wagtail_tasks.confirm"
UNSUBSCRIBE_SALT = "wagtail_tasks.unsubscribe"
DAY = 24 * 3600


# Helpers ----------------------------------------------------------------------------------


class FormParser(HTMLParser):
    """Collects the forms of a page: action, method and the named inputs with their values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(
                {"action": attrs.get("action"), "method": attrs.get("method"), "fields": {}}
            )
        elif tag in ("input", "button") and self.forms and attrs.get("name"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value", "")


def forms_in(html: str | bytes) -> list[dict]:
    parser = FormParser()
    parser.feed(html.decode() if isinstance(html, bytes) else html)
    return parser.forms


def confirm_url(subscription) -> str:
    return reverse("wagtail_tasks:confirm", args=[tokens.make_token(subscription, tokens.CONFIRM)])


def unsubscribe_url(subscription) -> str:
    return reverse(
        "wagtail_tasks:unsubscribe", args=[tokens.make_token(subscription, tokens.UNSUBSCRIBE)]
    )


def subscribe(client, capture, email, page, include_descendants=True):
    """POST the subscribe form and run the tasks its transaction enqueued."""
    data = {"email": email, "page": page.pk if hasattr(page, "pk") else page}
    if include_descendants is not None:
        data["include_descendants"] = include_descendants
    with capture(execute=True):
        return client.post(SUBSCRIBE_URL, data)


def links_in(text: str, view: str) -> list[str]:
    """Absolute links to one of our views (``confirm`` or ``unsubscribe``) found in a text."""
    return re.findall(rf"http://testserver/subscriptions/{view}/[^/\s\"<>]+/", text)


def path_of(url: str) -> str:
    return urlsplit(url).path


def html_body(message) -> str:
    ((content, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    return content


def flip_one_char(token: str, index: int) -> str:
    """The token with one base64 character at ``index`` replaced by another."""
    while token[index] == ":":
        index += 1
    replacement = "A" if token[index] != "A" else "B"
    return token[:index] + replacement + token[index + 1 :]


class PastSigner(signing.TimestampSigner):
    """Signs as ``signing.dumps`` does, but stamped ``age`` seconds ago: a genuinely old link."""

    def __init__(self, age: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.age = age

    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time() - self.age))


def old_confirm_token(subscription, age: float) -> str:
    """A real confirm token for ``subscription`` as if made ``age`` seconds ago."""
    payload = signing.loads(tokens.make_token(subscription, tokens.CONFIRM), salt=CONFIRM_SALT)
    return PastSigner(age, salt=CONFIRM_SALT).sign_object(payload)


def template_names(response) -> list[str]:
    return [t.name for t in response.templates]


def assert_invalid_link(response, message: str) -> None:
    assert response.status_code == 400
    assert "wagtail_tasks/notifications/invalid_link.html" in template_names(response)
    assert message in response.content.decode()


# Subscribe --------------------------------------------------------------------------------


def test_subscribe_get_shows_the_form_for_the_page(client, section):
    response = client.get(SUBSCRIBE_URL, {"page": section.pk})

    assert response.status_code == 200
    assert "wagtail_tasks/notifications/subscribe.html" in template_names(response)
    (form,) = forms_in(response.content)
    assert form["method"] == "post"
    assert form["fields"]["page"] == str(section.pk)
    assert form["fields"]["include_descendants"] == "True"
    assert "email" in form["fields"]
    assert form["fields"]["csrfmiddlewaretoken"]
    assert not Subscription.objects.exists()


def test_subscribe_creates_a_pending_subscription_and_emails_one_confirmation(
    client, site, section, outbox, django_capture_on_commit_callbacks
):
    response = subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", section)

    assert response.status_code == 200
    assert "wagtail_tasks/notifications/subscribe_done.html" in template_names(response)
    assert "Check your inbox" in response.content.decode()

    subscription = Subscription.objects.get()
    assert subscription.status == SubscriptionStatus.PENDING
    assert subscription.email == "reader@example.com"
    assert subscription.page_id == section.pk
    assert subscription.include_descendants is True
    assert subscription.user is None
    assert subscription.confirmed_at is None
    assert subscription.unsubscribed_at is None

    record = TaskRecord.objects.get()
    assert record.kind == KIND_CONFIRM
    assert record.status == TaskStatus.SUCCEEDED
    assert record.target == subscription
    assert record.site == site
    assert record.finished_at is not None

    (message,) = outbox
    assert message.to == ["reader@example.com"]
    assert message.subject == "Please confirm your subscription to Test site"
    (link,) = links_in(message.body, "confirm")
    assert links_in(html_body(message), "confirm") == [link]
    assert tokens.read_token(link.split("/")[-2], tokens.CONFIRM) == subscription


def test_the_confirm_link_in_the_email_shows_a_button_that_confirms(
    client, section, outbox, django_capture_on_commit_callbacks
):
    subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", section)
    (link,) = links_in(outbox[0].body, "confirm")

    shown = client.get(path_of(link))
    assert shown.status_code == 200
    assert "Confirm your subscription" in shown.content.decode()
    assert Subscription.objects.get().status == SubscriptionStatus.PENDING

    confirmed = client.post(path_of(link))
    assert confirmed.status_code == 200
    assert "You are subscribed" in confirmed.content.decode()
    assert Subscription.objects.get().status == SubscriptionStatus.CONFIRMED


def test_confirmed_subscriber_gets_the_next_publication(
    client, section, article, outbox, django_capture_on_commit_callbacks
):
    """The whole double opt-in, end to end: subscribe, confirm from the email, get notified."""
    subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", section)
    (link,) = links_in(outbox[0].body, "confirm")
    client.post(path_of(link))
    outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        publish(article)

    (message,) = outbox
    assert message.to == ["reader@example.com"]
    assert "Big news" in message.subject


def test_pending_subscriber_gets_no_publication(
    client, section, article, outbox, django_capture_on_commit_callbacks
):
    subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", section)
    outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        publish(article)

    assert outbox == []


def test_confirmation_task_is_enqueued_with_ids_only(
    client, section, outbox, django_capture_on_commit_callbacks
):
    email = "secret.reader@example.com"
    with override_settings(TASKS={"default": {"BACKEND": DUMMY_BACKEND}}):
        response = subscribe(client, django_capture_on_commit_callbacks, email, section)
        results = list(task_backends["default"].results)

    assert response.status_code == 200
    subscription = Subscription.objects.get()
    record = TaskRecord.objects.get()
    (result,) = results
    assert result.task.func is send_confirmation.func
    assert result.args == [record.pk, subscription.pk]
    assert result.kwargs == {}
    assert all(type(arg) is int for arg in result.args)
    assert email not in json.dumps([result.args, result.kwargs])
    assert "secret.reader" not in json.dumps([result.args, result.kwargs])
    # Enqueued, not run: nothing sent yet, the row waits for a worker.
    assert record.status == TaskStatus.QUEUED
    assert record.backend_task_id == str(result.id)
    assert record.enqueued_at is not None
    assert outbox == []


def test_nothing_is_enqueued_before_the_request_commits(client, section, outbox):
    """Without running on-commit callbacks, the row exists but no task runs and no mail goes."""
    with override_settings(TASKS={"default": {"BACKEND": DUMMY_BACKEND}}):
        client.post(SUBSCRIBE_URL, {"email": "reader@example.com", "page": section.pk})
        results = list(task_backends["default"].results)

    assert results == []
    assert TaskRecord.objects.get().status == TaskStatus.QUEUED
    assert outbox == []


@pytest.mark.parametrize(
    ("posted", "expected"),
    [("True", True), ("on", True), ("False", False), (None, False)],
)
def test_subscribe_records_include_descendants(
    client, section, outbox, django_capture_on_commit_callbacks, posted, expected
):
    subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", section, posted)

    assert Subscription.objects.get().include_descendants is expected
    assert len(outbox) == 1


def test_subscribe_links_the_logged_in_user(
    client, section, outbox, django_capture_on_commit_callbacks
):
    user = UserFactory()
    client.force_login(user)

    subscribe(client, django_capture_on_commit_callbacks, "someone@example.com", section)

    assert Subscription.objects.get().user == user


def test_subscribing_again_while_pending_resends_the_confirmation(
    client, section, outbox, django_capture_on_commit_callbacks
):
    subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", section)
    subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", section, False)

    subscription = Subscription.objects.get()
    assert subscription.status == SubscriptionStatus.PENDING
    assert subscription.include_descendants is False
    assert len(outbox) == 2
    assert [m.to for m in outbox] == [["reader@example.com"], ["reader@example.com"]]
    records = TaskRecord.objects.filter(kind=KIND_CONFIRM)
    assert records.count() == 2
    assert set(records.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}
    # Both links work: the second email does not break the first.
    for message in outbox:
        (link,) = links_in(message.body, "confirm")
        assert client.get(path_of(link)).status_code == 200


def test_subscribing_when_confirmed_sends_nothing_and_looks_the_same(
    client, section, outbox, django_capture_on_commit_callbacks
):
    confirmed_at = timezone.now() - timedelta(days=3)
    existing = SubscriptionFactory(
        page=section, email="reader@example.com", confirmed_at=confirmed_at
    )

    response = subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", section)
    fresh = subscribe(client, django_capture_on_commit_callbacks, "new@example.com", section)

    assert response.status_code == fresh.status_code == 200
    # Byte for byte the page a new address gets: nothing tells who is on the list.
    assert response.content == fresh.content
    existing.refresh_from_db()
    assert existing.status == SubscriptionStatus.CONFIRMED
    assert existing.confirmed_at == confirmed_at
    assert [m.to for m in outbox] == [["new@example.com"]]
    assert TaskRecord.objects.filter(target_object_id=str(existing.pk)).count() == 0


def test_subscribing_after_unsubscribing_revives_the_subscription(
    client, section, outbox, django_capture_on_commit_callbacks
):
    old = SubscriptionFactory(
        page=section,
        email="reader@example.com",
        status=SubscriptionStatus.UNSUBSCRIBED,
        include_descendants=False,
        unsubscribed_at=timezone.now(),
    )

    response = subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", section)

    assert response.status_code == 200
    subscription = Subscription.objects.get()
    assert subscription.pk == old.pk
    assert subscription.status == SubscriptionStatus.PENDING
    assert subscription.unsubscribed_at is None
    assert subscription.include_descendants is True
    (message,) = outbox
    assert message.to == ["reader@example.com"]
    record = TaskRecord.objects.get(kind=KIND_CONFIRM)
    assert record.status == TaskStatus.SUCCEEDED
    assert record.target == subscription
    # The new link confirms it.
    (link,) = links_in(message.body, "confirm")
    client.post(path_of(link))
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CONFIRMED


def test_email_addresses_are_case_insensitive(
    client, section, outbox, django_capture_on_commit_callbacks
):
    subscribe(client, django_capture_on_commit_callbacks, "Reader@Example.com", section)
    subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", section)
    subscribe(client, django_capture_on_commit_callbacks, " READER@EXAMPLE.COM ", section)

    subscription = Subscription.objects.get()
    assert subscription.email == "Reader@Example.com"
    assert subscription.status == SubscriptionStatus.PENDING
    assert len(outbox) == 3


def test_confirmed_address_in_another_case_sends_nothing(
    client, section, outbox, django_capture_on_commit_callbacks
):
    SubscriptionFactory(page=section, email="reader@example.com")

    response = subscribe(client, django_capture_on_commit_callbacks, "Reader@EXAMPLE.com", section)

    assert response.status_code == 200
    assert Subscription.objects.count() == 1
    assert Subscription.objects.get().status == SubscriptionStatus.CONFIRMED
    assert outbox == []
    assert not TaskRecord.objects.exists()


def test_the_same_address_can_subscribe_to_two_pages(
    client, section, outbox, django_capture_on_commit_callbacks
):
    other = ArticlePageFactory(parent=section, live=True)

    subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", section)
    subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", other)

    assert set(Subscription.objects.values_list("page_id", flat=True)) == {section.pk, other.pk}
    assert len(outbox) == 2


@pytest.mark.parametrize(
    "email",
    [
        "not-an-email",
        "reader@",
        "two@at@example.com",
        "reader@example.com\nBcc: victim@example.com",
        "",
        "x" * 250 + "@example.com",
    ],
)
def test_invalid_email_is_refused(
    client, section, outbox, django_capture_on_commit_callbacks, email
):
    response = subscribe(client, django_capture_on_commit_callbacks, email, section)

    assert response.status_code == 400
    assert "wagtail_tasks/notifications/subscribe.html" in template_names(response)
    assert response.context["form"].errors["email"]
    assert 'class="error"' in response.content.decode()
    assert not Subscription.objects.exists()
    assert not TaskRecord.objects.exists()
    assert outbox == []


def test_invalid_email_shows_the_error_and_keeps_the_page(
    client, section, django_capture_on_commit_callbacks
):
    response = subscribe(client, django_capture_on_commit_callbacks, "not-an-email", section)

    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    (form,) = forms_in(response.content)
    assert form["fields"]["page"] == str(section.pk)
    assert form["fields"]["email"] == "not-an-email"


@pytest.mark.parametrize("page", ["missing", "draft", "unpublished", "garbage", "empty"])
def test_subscribing_to_a_page_that_cannot_be_subscribed_to_is_refused(
    client, section, outbox, django_capture_on_commit_callbacks, page
):
    draft = ArticlePageFactory(parent=section)  # never published
    unpublished = ArticlePageFactory(parent=section, live=True)
    unpublished.unpublish()
    page_id = {
        "missing": draft.pk + 1000,
        "draft": draft.pk,
        "unpublished": unpublished.pk,
        "garbage": "abc",
        "empty": "",
    }[page]

    response = subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", page_id)

    assert response.status_code == 400
    assert response.context["form"].errors["page"]
    assert "This page cannot be subscribed to." in response.content.decode()
    assert not Subscription.objects.exists()
    assert not TaskRecord.objects.exists()
    assert outbox == []


@pytest.mark.parametrize("restricted", ["page", "ancestor"])
def test_anonymous_visitor_cannot_subscribe_to_a_private_page(
    client, section, outbox, django_capture_on_commit_callbacks, restricted
):
    """A page behind (or below) a view restriction is refused, and its title is not shown:
    otherwise anyone could read private titles by posting page ids, then get them by email."""
    private_section = SectionPageFactory(parent=section, title="Members area")
    private = ArticlePageFactory(parent=private_section, live=True, title="Secret plans")
    PageViewRestriction.objects.create(
        page=private if restricted == "page" else private_section,
        restriction_type=PageViewRestriction.LOGIN,
    )

    response = subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", private)

    assert response.status_code == 400
    assert "Secret plans" not in response.content.decode()
    assert not Subscription.objects.exists()
    assert outbox == []


def test_empty_post_shows_the_required_errors(client, section, outbox):
    """An empty POST is still a bound form: the 400 page says what is missing."""
    response = client.post(SUBSCRIBE_URL, {})

    assert response.status_code == 400
    assert not Subscription.objects.exists()
    assert outbox == []
    form = response.context["form"]
    assert form.is_bound
    assert "This field is required." in response.content.decode()


def test_subscribe_is_csrf_protected(section, outbox, django_capture_on_commit_callbacks):
    client = Client(enforce_csrf_checks=True)

    response = subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", section)

    assert response.status_code == 403
    assert not Subscription.objects.exists()
    assert outbox == []


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_subscribe_allows_only_get_and_post(client, section, method):
    response = getattr(client, method)(SUBSCRIBE_URL)

    assert response.status_code == 405
    assert sorted(response["Allow"].split(", ")) == ["GET", "POST"]


# Confirm ----------------------------------------------------------------------------------


@pytest.fixture
def pending(section):
    return SubscriptionFactory(
        page=section, email="reader@example.com", status=SubscriptionStatus.PENDING
    )


def test_confirm_get_shows_a_button_and_confirms_nothing(client, pending):
    response = client.get(confirm_url(pending))

    assert response.status_code == 200
    assert "wagtail_tasks/notifications/confirm.html" in template_names(response)
    content = response.content.decode()
    assert "Confirm your subscription" in content
    assert "reader@example.com" in content
    assert "News" in content
    (form,) = forms_in(content)
    assert form["method"] == "post"
    assert form["fields"]["csrfmiddlewaretoken"]
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.PENDING
    assert pending.confirmed_at is None


def test_confirm_post_confirms(client, pending):
    before = timezone.now()

    response = client.post(confirm_url(pending))

    assert response.status_code == 200
    assert "You are subscribed" in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.CONFIRMED
    assert before <= pending.confirmed_at <= timezone.now()


def test_confirm_post_twice_is_harmless(client, pending):
    url = confirm_url(pending)
    client.post(url)
    pending.refresh_from_db()
    first_confirmed_at = pending.confirmed_at

    again = client.post(url)
    shown = client.get(url)

    assert again.status_code == shown.status_code == 200
    assert "You are subscribed" in again.content.decode()
    assert "You are subscribed" in shown.content.decode()
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.CONFIRMED
    assert pending.confirmed_at == first_confirmed_at


def test_confirm_button_works_with_csrf_checks(pending):
    """The Confirm button carries a CSRF token, and a POST without one confirms nothing."""
    client = Client(enforce_csrf_checks=True)
    url = confirm_url(pending)

    refused = client.post(url)
    assert refused.status_code == 403
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.PENDING

    (form,) = forms_in(client.get(url).content)
    response = client.post(url, form["fields"])

    assert response.status_code == 200
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.CONFIRMED


@pytest.mark.parametrize("where", ["payload", "middle", "timestamp", "signature"])
def test_confirm_tampered_token_is_refused(client, pending, where):
    token = tokens.make_token(pending, tokens.CONFIRM)
    payload, stamp, signature = token.split(":")
    index = {
        "payload": 0,
        "middle": len(payload) // 2,
        "timestamp": len(payload) + 1,
        "signature": len(token) - 1,
    }[where]
    tampered = flip_one_char(token, index)
    assert tampered != token
    url = reverse("wagtail_tasks:confirm", args=[tampered])

    shown = client.get(url)
    posted = client.post(url)

    assert_invalid_link(shown, "This link is not valid.")
    assert_invalid_link(posted, "This link is not valid.")
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.PENDING
    assert pending.confirmed_at is None


@pytest.mark.parametrize("token", ["abc", "a:b:c", "not-a-token-at-all"])
def test_confirm_garbage_token_is_refused(client, pending, token):
    response = client.post(reverse("wagtail_tasks:confirm", args=[token]))

    assert_invalid_link(response, "This link is not valid.")
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.PENDING


def test_confirm_token_with_another_subscription_id_is_refused(client, pending, section):
    """A validly signed token whose id names another subscription, with A's address hash."""
    other = SubscriptionFactory(
        page=section, email="victim@example.com", status=SubscriptionStatus.PENDING
    )
    a_hash = signing.loads(tokens.make_token(pending, tokens.CONFIRM), salt=CONFIRM_SALT)["a"]
    forged = signing.dumps({"s": other.pk, "a": a_hash}, salt=CONFIRM_SALT)

    response = client.post(reverse("wagtail_tasks:confirm", args=[forged]))

    assert_invalid_link(response, "This link is not valid.")
    other.refresh_from_db()
    pending.refresh_from_db()
    assert other.status == SubscriptionStatus.PENDING
    assert pending.status == SubscriptionStatus.PENDING


def test_confirm_token_without_an_address_hash_is_refused(client, pending):
    forged = signing.dumps({"s": pending.pk}, salt=CONFIRM_SALT)

    response = client.post(reverse("wagtail_tasks:confirm", args=[forged]))

    assert_invalid_link(response, "This link is not valid.")
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.PENDING


def test_unsubscribe_token_does_not_work_on_the_confirm_url(client, pending):
    token = tokens.make_token(pending, tokens.UNSUBSCRIBE)

    response = client.post(reverse("wagtail_tasks:confirm", args=[token]))

    assert_invalid_link(response, "This link is not valid.")
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.PENDING


def test_confirm_token_does_not_work_on_the_unsubscribe_url(client, section):
    subscription = SubscriptionFactory(page=section)
    token = tokens.make_token(subscription, tokens.CONFIRM)

    response = client.post(reverse("wagtail_tasks:unsubscribe", args=[token]))

    assert_invalid_link(response, "This link is not valid.")
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CONFIRMED


def test_confirm_token_signed_with_the_unsubscribe_salt_but_confirm_hash_is_refused(
    client, pending
):
    """Purposes differ in the address hash too, not only in the signing salt."""
    confirm_hash = signing.loads(tokens.make_token(pending, tokens.CONFIRM), salt=CONFIRM_SALT)["a"]
    forged = signing.dumps({"s": pending.pk, "a": confirm_hash}, salt=UNSUBSCRIBE_SALT)

    response = client.post(reverse("wagtail_tasks:unsubscribe", args=[forged]))

    assert_invalid_link(response, "This link is not valid.")
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.PENDING


def test_confirm_link_expires_after_the_default_max_age(client, pending):
    expired = old_confirm_token(pending, 7 * DAY + 60)
    fresh_enough = old_confirm_token(pending, 6 * DAY)

    refused = client.post(reverse("wagtail_tasks:confirm", args=[expired]))
    assert_invalid_link(refused, "expired")
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.PENDING

    accepted = client.post(reverse("wagtail_tasks:confirm", args=[fresh_enough]))
    assert accepted.status_code == 200
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.CONFIRMED


def test_confirm_max_age_setting_is_honoured(client, pending):
    two_hours_old = old_confirm_token(pending, 2 * 3600)
    url = reverse("wagtail_tasks:confirm", args=[two_hours_old])

    with override_settings(WAGTAIL_TASKS_CONFIRM_MAX_AGE=3600):
        refused_get = client.get(url)
        refused_post = client.post(url)
    assert_invalid_link(refused_get, "This link has expired.")
    assert_invalid_link(refused_post, "This link has expired.")
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.PENDING

    with override_settings(WAGTAIL_TASKS_CONFIRM_MAX_AGE=3 * 3600):
        accepted = client.post(url)
    assert accepted.status_code == 200
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.CONFIRMED


def test_unsubscribe_links_do_not_expire(client, section):
    subscription = SubscriptionFactory(page=section)
    payload = signing.loads(
        tokens.make_token(subscription, tokens.UNSUBSCRIBE), salt=UNSUBSCRIBE_SALT
    )
    year_old = PastSigner(365 * DAY, salt=UNSUBSCRIBE_SALT).sign_object(payload)

    response = client.post(reverse("wagtail_tasks:unsubscribe", args=[year_old]))

    assert response.status_code == 200
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.UNSUBSCRIBED


def test_old_confirm_link_cannot_revive_an_unsubscribed_subscription(client, pending):
    url = confirm_url(pending)
    client.post(unsubscribe_url(pending))
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.UNSUBSCRIBED

    shown = client.get(url)
    posted = client.post(url)

    assert_invalid_link(shown, "This subscription was cancelled.")
    assert_invalid_link(posted, "This subscription was cancelled.")
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.UNSUBSCRIBED
    assert pending.confirmed_at is None


def test_confirm_link_dies_when_the_address_changes(client, pending):
    url = confirm_url(pending)
    pending.email = "someone.else@example.com"
    pending.save()

    response = client.post(url)

    assert_invalid_link(response, "This link is not valid.")
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.PENDING


def test_confirm_link_survives_a_change_of_case_only(client, pending):
    url = confirm_url(pending)
    pending.email = "Reader@Example.COM"
    pending.save()

    response = client.post(url)

    assert response.status_code == 200
    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.CONFIRMED


def test_confirm_link_of_a_deleted_subscription_is_refused(client, pending):
    url = confirm_url(pending)
    pending.delete()

    response = client.post(url)

    assert_invalid_link(response, "This link is not valid.")
    assert not Subscription.objects.exists()


# Unsubscribe ------------------------------------------------------------------------------


@pytest.fixture
def confirmed(section):
    return SubscriptionFactory(
        page=section, email="reader@example.com", confirmed_at=timezone.now()
    )


def test_unsubscribe_get_shows_a_page_and_unsubscribes_nothing(client, confirmed):
    response = client.get(unsubscribe_url(confirmed))

    assert response.status_code == 200
    assert "wagtail_tasks/notifications/unsubscribe.html" in template_names(response)
    content = response.content.decode()
    assert "Stop emails to reader@example.com" in content
    (form,) = forms_in(content)
    assert form["method"] == "post"
    confirmed.refresh_from_db()
    assert confirmed.status == SubscriptionStatus.CONFIRMED
    assert confirmed.unsubscribed_at is None


def test_unsubscribe_post_unsubscribes(client, confirmed, section):
    other = SubscriptionFactory(page=section)
    before = timezone.now()

    response = client.post(unsubscribe_url(confirmed))

    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    confirmed.refresh_from_db()
    assert confirmed.status == SubscriptionStatus.UNSUBSCRIBED
    assert before <= confirmed.unsubscribed_at <= timezone.now()
    other.refresh_from_db()
    assert other.status == SubscriptionStatus.CONFIRMED


def test_unsubscribe_button_on_the_page_works_with_csrf_checks(confirmed):
    """The page's own button (no CSRF token in it) unsubscribes: the view is CSRF-exempt."""
    client = Client(enforce_csrf_checks=True)
    url = unsubscribe_url(confirmed)
    (form,) = forms_in(client.get(url).content)

    response = client.post(form["action"] or url, form["fields"])

    assert response.status_code == 200
    confirmed.refresh_from_db()
    assert confirmed.status == SubscriptionStatus.UNSUBSCRIBED


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_unsubscribe_needs_no_csrf_token(confirmed, encoding):
    """RFC 8058: the mail client POSTs ``List-Unsubscribe=One-Click`` with no cookies."""
    client = Client(enforce_csrf_checks=True)
    url = unsubscribe_url(confirmed)
    if encoding == "urlencoded":
        response = client.post(
            url,
            "List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
    else:
        response = client.post(url, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    confirmed.refresh_from_db()
    assert confirmed.status == SubscriptionStatus.UNSUBSCRIBED
    assert confirmed.unsubscribed_at is not None


@pytest.mark.parametrize("where", ["payload", "signature"])
def test_unsubscribe_tampered_token_is_refused(client, confirmed, where):
    token = tokens.make_token(confirmed, tokens.UNSUBSCRIBE)
    tampered = flip_one_char(token, 0 if where == "payload" else len(token) - 1)
    url = reverse("wagtail_tasks:unsubscribe", args=[tampered])

    assert_invalid_link(client.get(url), "This link is not valid.")
    assert_invalid_link(client.post(url), "This link is not valid.")
    confirmed.refresh_from_db()
    assert confirmed.status == SubscriptionStatus.CONFIRMED
    assert confirmed.unsubscribed_at is None


def test_unsubscribe_token_with_another_subscription_id_is_refused(client, confirmed, section):
    victim = SubscriptionFactory(page=section, email="victim@example.com")
    a_hash = signing.loads(tokens.make_token(confirmed, tokens.UNSUBSCRIBE), salt=UNSUBSCRIBE_SALT)[
        "a"
    ]
    forged = signing.dumps({"s": victim.pk, "a": a_hash}, salt=UNSUBSCRIBE_SALT)

    response = client.post(reverse("wagtail_tasks:unsubscribe", args=[forged]))

    assert_invalid_link(response, "This link is not valid.")
    victim.refresh_from_db()
    assert victim.status == SubscriptionStatus.CONFIRMED


def test_unsubscribe_link_dies_when_the_address_changes(client, confirmed):
    url = unsubscribe_url(confirmed)
    confirmed.email = "new.address@example.com"
    confirmed.save()

    response = client.post(url)

    assert_invalid_link(response, "This link is not valid.")
    confirmed.refresh_from_db()
    assert confirmed.status == SubscriptionStatus.CONFIRMED


def test_second_unsubscribe_post_is_harmless(client, confirmed):
    url = unsubscribe_url(confirmed)
    client.post(url)
    confirmed.refresh_from_db()
    first_unsubscribed_at = confirmed.unsubscribed_at

    again = client.post(url)

    assert again.status_code == 200
    assert "You are unsubscribed" in again.content.decode()
    confirmed.refresh_from_db()
    assert confirmed.status == SubscriptionStatus.UNSUBSCRIBED
    assert confirmed.unsubscribed_at == first_unsubscribed_at


def test_unsubscribing_a_pending_subscription_stops_its_confirmation(client, pending):
    client.post(unsubscribe_url(pending))

    pending.refresh_from_db()
    assert pending.status == SubscriptionStatus.UNSUBSCRIBED
    assert_invalid_link(client.post(confirm_url(pending)), "This subscription was cancelled.")


@pytest.mark.parametrize("method", ["put", "delete"])
def test_confirm_and_unsubscribe_allow_only_get_and_post(client, confirmed, method):
    for url in (confirm_url(confirmed), unsubscribe_url(confirmed)):
        assert getattr(client, method)(url).status_code == 405
    confirmed.refresh_from_db()
    assert confirmed.status == SubscriptionStatus.CONFIRMED


# The links in real emails -----------------------------------------------------------------


def test_list_unsubscribe_header_of_a_notification_unsubscribes(
    section, article, subscribers, outbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        publish(article)

    assert len(outbox) == 3
    by_address = {message.to[0]: message for message in outbox}
    target = subscribers[1]
    message = by_address[target.email]
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = message.extra_headers["List-Unsubscribe"]
    assert header.startswith("<http://testserver/subscriptions/unsubscribe/")
    assert header.endswith(">")
    url = header[1:-1]
    # The same link in the header and in both bodies.
    assert links_in(message.body, "unsubscribe") == [url]
    assert links_in(html_body(message), "unsubscribe") == [url]

    client = Client(enforce_csrf_checks=True)
    response = client.post(
        path_of(url),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    statuses = dict(Subscription.objects.values_list("pk", "status"))
    assert statuses == {
        subscribers[0].pk: SubscriptionStatus.CONFIRMED,
        target.pk: SubscriptionStatus.UNSUBSCRIBED,
        subscribers[2].pk: SubscriptionStatus.CONFIRMED,
    }


def test_each_notification_carries_its_own_recipients_link(
    section, article, subscribers, outbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        publish(article)

    for message in outbox:
        url = message.extra_headers["List-Unsubscribe"][1:-1]
        token = path_of(url).rstrip("/").split("/")[-1]
        assert tokens.read_token(token, tokens.UNSUBSCRIBE).email == message.to[0]


def test_unsubscribed_reader_gets_no_next_notification(
    section, subscribers, outbox, django_capture_on_commit_callbacks
):
    first = ArticlePageFactory(parent=section, title="First")
    with django_capture_on_commit_callbacks(execute=True):
        publish(first)
    leaving = subscribers[0]
    (message,) = [m for m in outbox if m.to == [leaving.email]]
    Client().post(path_of(message.extra_headers["List-Unsubscribe"][1:-1]))
    outbox.clear()

    second = ArticlePageFactory(parent=section, title="Second")
    with django_capture_on_commit_callbacks(execute=True):
        publish(second)

    assert sorted(m.to[0] for m in outbox) == sorted(s.email for s in subscribers[1:])


def test_confirmation_email_has_a_working_unsubscribe_link(
    client, section, outbox, django_capture_on_commit_callbacks
):
    subscribe(client, django_capture_on_commit_callbacks, "reader@example.com", section)
    (message,) = outbox
    url = message.extra_headers["List-Unsubscribe"][1:-1]
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    response = Client(enforce_csrf_checks=True).post(
        path_of(url),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    subscription = Subscription.objects.get()
    assert subscription.status == SubscriptionStatus.UNSUBSCRIBED
    # And the confirm link of the same email no longer confirms.
    (link,) = links_in(message.body, "confirm")
    assert_invalid_link(client.post(path_of(link)), "This subscription was cancelled.")


# The template tag -------------------------------------------------------------------------


def render_tag(source: str, page) -> tuple[str, object]:
    request = RequestFactory().get("/news/")
    html = Template("{% load wagtail_tasks %}" + source).render(
        RequestContext(request, {"page": page})
    )
    return html, request


def test_subscribe_form_tag_renders_a_form_to_the_subscribe_view(section):
    html, _request = render_tag("{% subscribe_form page %}", section)

    (form,) = forms_in(html)
    assert form["method"] == "post"
    assert form["action"] == reverse("wagtail_tasks:subscribe") == SUBSCRIBE_URL
    assert form["fields"]["page"] == str(section.pk)
    assert form["fields"]["include_descendants"] == "True"
    assert form["fields"]["email"] == ""
    assert len(form["fields"]["csrfmiddlewaretoken"]) == 64


def test_subscribe_form_tag_can_leave_out_pages_below(section):
    html, _request = render_tag("{% subscribe_form page include_descendants=False %}", section)

    (form,) = forms_in(html)
    assert form["fields"]["include_descendants"] == "False"


@pytest.mark.parametrize(
    ("source", "expected"), [("", True), (" include_descendants=False", False)]
)
def test_subscribe_form_tag_submits_as_rendered(
    section, outbox, django_capture_on_commit_callbacks, source, expected
):
    """Post the rendered form as a browser would, CSRF checks on: it subscribes."""
    html, request = render_tag("{% subscribe_form page" + source + " %}", section)
    (form,) = forms_in(html)
    client = Client(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = request.META["CSRF_COOKIE"]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(form["action"], {**form["fields"], "email": "reader@example.com"})

    assert response.status_code == 200
    subscription = Subscription.objects.get()
    assert subscription.page_id == section.pk
    assert subscription.include_descendants is expected
    assert subscription.status == SubscriptionStatus.PENDING
    assert [m.to for m in outbox] == [["reader@example.com"]]


def test_a_simultaneous_first_subscription_of_the_same_address_is_not_an_error(section, outbox):
    """Two requests race: the second insert hits the unique constraint and answers normally."""
    from django.contrib.auth.models import AnonymousUser

    from wagtail_tasks.notifications.views import request_confirmation

    # The other request's row appears between our lookup and our insert: simulate by making
    # the lookup miss (different case is matched by iexact, so insert a row the lookup skips).
    Subscription.objects.create(page=section, email="race@example.com", status="pending")
    original = Subscription.objects.select_for_update

    def lookup_misses():
        return original().filter(pk=-1)

    Subscription.objects.select_for_update = lookup_misses
    try:
        request_confirmation(section, "race@example.com", True, AnonymousUser())
    finally:
        del Subscription.objects.select_for_update
    assert Subscription.objects.filter(email="race@example.com").count() == 1
    assert TaskRecord.objects.count() == 0


def test_reviving_clears_the_old_confirmation_and_links_the_user(
    client, section, django_capture_on_commit_callbacks
):
    from tests.factories import UserFactory

    user = UserFactory(username="returning")
    old = SubscriptionFactory(page=section, email="back@example.com", status="unsubscribed")
    Subscription.objects.filter(pk=old.pk).update(confirmed_at=old.created_at)
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(SUBSCRIBE_URL, {"email": "back@example.com", "page": section.pk})
    old.refresh_from_db()
    assert (old.status, old.confirmed_at, old.user) == ("pending", None, user)


def test_two_subscribe_forms_on_one_page_have_distinct_ids(section, article):
    from django.template import Context, Template
    from django.test import RequestFactory

    html = Template("{% load wagtail_tasks %}{% subscribe_form a %}{% subscribe_form b %}").render(
        Context({"a": section, "b": article, "request": RequestFactory().get("/")})
    )
    assert f'id="id_subscribe_{section.pk}_email"' in html
    assert f'id="id_subscribe_{article.pk}_email"' in html
    assert f'for="id_subscribe_{section.pk}_email"' in html
