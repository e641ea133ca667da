"""Filters: each report's filters are applied by the worker, and listed beside the file."""

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from wagtail.models import Page

from tests.conftest import publish
from tests.factories import ArticlePageFactory, SectionPageFactory, SubscriptionFactory, UserFactory
from tests.reports.conftest import as_dicts, file_url, report_url, rows_of
from wagtail_tasks.notifications.models import Subscription

pytestmark = pytest.mark.django_db


def article_type():
    return ContentType.objects.get(app_label="testapp", model="articlepage")


@pytest.fixture
def tree(site, section, article):
    """News (section) > Big news (live), Draft news; Sport (section) > Match (live, old)."""
    publish(article)
    draft = ArticlePageFactory(title="Draft news", parent=section)
    sport = SectionPageFactory(title="Sport", parent=site.root_page)
    match = ArticlePageFactory(title="Match", parent=sport)
    publish(match)
    long_ago = timezone.now() - timedelta(days=30)
    Page.objects.filter(pk=match.pk).update(last_published_at=long_ago)
    return {"section": section, "article": article, "draft": draft, "sport": sport, "match": match}


def titles(client, report_file):
    return [row.get("Title") or row.get("Name") for row in as_dicts(rows_of(client, report_file))]


def test_content_inventory_section_is_the_page_and_the_pages_below(admin_client, generate, tree):
    report_file = generate(admin_client, "content-inventory", {"section": tree["section"].pk})
    assert titles(admin_client, report_file) == ["News", "Big news", "Draft news"]
    assert report_file.filters == {"section": [str(tree["section"].pk)]}
    assert report_file.filters_display == [["Page and the pages below it", "News"]]


def test_content_inventory_live_type_and_date(admin_client, generate, tree):
    live = generate(admin_client, "content-inventory", {"live": "false"})
    assert titles(admin_client, live) == ["Draft news"]
    assert live.filters_display == [["Live", "No"]]

    articles = generate(admin_client, "content-inventory", {"content_type": article_type().pk})
    assert titles(admin_client, articles) == ["Big news", "Draft news", "Match"]
    assert articles.filters_display == [["Type", "Article page"]]

    week_ago = (timezone.now() - timedelta(days=7)).date().isoformat()
    recent = generate(
        admin_client,
        "content-inventory",
        {"last_published_at_from": week_ago, "live": "true"},
    )
    assert titles(admin_client, recent) == ["Big news"]
    display = dict(recent.filters_display)
    assert display["Live"] == "Yes"
    assert display["Last published"] == f"{week_ago} – …"  # as typed, open-ended


def test_subscribers_by_section_and_status(admin_client, generate, tree):
    SubscriptionFactory(page=tree["section"], email="news@example.com")
    SubscriptionFactory(page=tree["article"], email="story@example.com", status="pending")
    SubscriptionFactory(page=tree["sport"], email="sport@example.com")
    SubscriptionFactory(page=tree["match"], email="match@example.com", status="pending")

    def emails(data):
        report_file = generate(admin_client, "subscribers", data)
        return report_file, [row["Email"] for row in as_dicts(rows_of(admin_client, report_file))]

    report_file, found = emails({"section": tree["section"].pk})
    assert found == ["news@example.com", "story@example.com"]
    report_file, found = emails({"status": "pending"})
    assert found == ["story@example.com", "match@example.com"]
    assert report_file.filters_display == [["Status", "Waiting for confirmation"]]
    report_file, found = emails({"status": "pending", "section": tree["sport"].pk})
    assert found == ["match@example.com"]
    assert sorted(report_file.filters_display) == [
        ["Page and the pages below it", "Sport"],
        ["Status", "Waiting for confirmation"],
    ]


def test_aging_pages_uses_wagtails_filters(admin_client, generate, tree):
    publish(SectionPageFactory(title="Old section", parent=tree["sport"]))
    everything = generate(admin_client, "aging-pages")
    assert set(titles(admin_client, everything)) >= {"Big news", "Match", "Old section"}

    articles = generate(admin_client, "aging-pages", {"content_type": article_type().pk})
    assert titles(admin_client, articles) == ["Match", "Big news"]  # oldest first
    assert articles.filters_display == [["Type", "Article page"]]

    two_weeks_ago = (timezone.now() - timedelta(days=14)).date().isoformat()
    old = generate(admin_client, "aging-pages", {"last_published_at": two_weeks_ago})
    assert titles(admin_client, old) == ["Match"]


def test_site_history_uses_wagtails_filters(admin_client, generate, tree):
    editor = UserFactory(username="eve", is_superuser=True)
    tree["draft"].save_revision(user=editor)
    publish(tree["draft"], user=editor)
    published = generate(admin_client, "site-history", {"action": "wagtail.publish"})
    rows = as_dicts(rows_of(admin_client, published))
    assert {row["Action type"] for row in rows} == {"Publish"}
    assert {row["Name"] for row in rows} == {"Big news", "Match", "Draft news"}
    assert published.filters_display == [["Action", "Publish"]]

    by_eve = generate(admin_client, "site-history", {"user": editor.pk})
    rows = as_dicts(rows_of(admin_client, by_eve))
    assert rows and {row["User"] for row in rows} == {"eve"}


def test_the_file_page_lists_the_filters_and_links_to_the_filled_in_form(
    admin_client, generate, tree
):
    report_file = generate(
        admin_client, "subscribers", {"section": tree["sport"].pk, "status": "confirmed"}
    )
    page = admin_client.get(file_url("file", report_file)).content.decode()
    assert "Page and the pages below it: Sport" in page
    assert "Status: Confirmed" in page
    again = f"{report_url('subscribers')}?{report_file.filters_query}"
    assert again.replace("&", "&amp;") in page
    form = admin_client.get(again).content.decode()
    assert 'value="confirmed" selected' in form or 'value="confirmed" selected' in form.replace(
        "selected=", "selected "
    )
    assert f'value="{tree["sport"].pk}"' in form


def test_no_filters_is_said(admin_client, generate, site):
    report_file = generate(admin_client, "subscribers")
    assert report_file.filters == {} and report_file.filters_display == []
    assert "<dd>None</dd>" in admin_client.get(file_url("file", report_file)).content.decode()


def test_subscribers_by_date_range(admin_client, generate, section):
    old = SubscriptionFactory(page=section, email="old@example.com")
    SubscriptionFactory(page=section, email="new@example.com")
    Subscription.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=20))
    start = (timezone.now() - timedelta(days=25)).date().isoformat()
    end = (timezone.now() - timedelta(days=15)).date().isoformat()
    report_file = generate(
        admin_client, "subscribers", {"created_at_from": start, "created_at_to": end}
    )
    assert [row["Email"] for row in as_dicts(rows_of(admin_client, report_file))] == [
        "old@example.com"
    ]
    assert report_file.filters_display == [["Subscribed", f"{start} – {end}"]]
