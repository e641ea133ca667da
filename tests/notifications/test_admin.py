"""The Subscriptions area of the Wagtail admin, and who may see it."""

import pytest
from django.urls import reverse

from tests.factories import SubscriptionFactory, SuperuserFactory, editor

pytestmark = pytest.mark.django_db

INDEX = "wagtail_tasks_subscriptions:index"


def test_listing_shows_and_searches_subscriptions(client, section):
    SubscriptionFactory(page=section, email="alice@example.com")
    SubscriptionFactory(page=section, email="bob@example.com", status="pending")
    client.force_login(SuperuserFactory(username="admin"))
    content = client.get(reverse(INDEX)).content.decode()
    assert "alice@example.com" in content and "bob@example.com" in content
    found = client.get(reverse(INDEX), {"q": "alice"}).content.decode()
    assert "alice@example.com" in found and "bob@example.com" not in found
    pending = client.get(reverse(INDEX), {"status": "pending"}).content.decode()
    assert "bob@example.com" in pending and "alice@example.com" not in pending


def test_editors_need_the_view_permission(client, section):
    SubscriptionFactory(page=section, email="alice@example.com")
    client.force_login(editor())
    assert client.get(reverse(INDEX)).status_code == 302  # Wagtail's "permission denied"
    client.force_login(editor("view_subscription"))
    response = client.get(reverse(INDEX))
    assert response.status_code == 200
    assert "alice@example.com" in response.content.decode()


def test_the_permissions_are_offered_in_the_group_editor(client):
    client.force_login(SuperuserFactory(username="admin"))
    content = client.get(reverse("wagtailusers_groups:add")).content.decode()
    for action in ("add", "change", "delete"):
        assert f"Can {action} subscription" in content
