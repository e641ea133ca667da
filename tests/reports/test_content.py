"""What each built-in report writes, in CSV and XLSX, and how the download serves it."""

import io
from datetime import UTC, datetime

import pytest
from django.contrib.contenttypes.models import ContentType
from openpyxl import load_workbook
from wagtail.models import Page

from tests.conftest import publish
from tests.factories import ArticlePageFactory, SubscriptionFactory, UserFactory
from tests.reports.conftest import (
    XLSX_TYPE,
    as_dicts,
    downloaded,
    read_csv,
    read_xlsx,
    rows_of,
)
from wagtail_tasks.models import TaskRecord, TaskStatus
from wagtail_tasks.notifications.models import (
    ERASED_REASON,
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationTrigger,
    Subscription,
)

pytestmark = pytest.mark.django_db

FORMATS = ["csv", "xlsx"]


def cell(value, fmt):
    """A value as the CSV file has it (text) or the XLSX file (typed; an empty cell is None)."""
    if fmt == "csv":
        return "" if value is None else str(value)
    return value


# Content inventory ------------------------------------------------------------------------


@pytest.fixture
def inventory(site, section, article):
    """Pages with subscriptions at every level; the expected subscriber count per page."""
    owner = UserFactory(username="olive")
    home = site.root_page
    Page.objects.filter(pk=article.pk).update(owner=owner)
    article.refresh_from_db()
    publish(article)
    draft = ArticlePageFactory(title="Draft news", parent=section)
    # Counted: confirmed, on the page itself or on a page above that includes descendants.
    SubscriptionFactory(page=home, include_descendants=True)
    SubscriptionFactory(page=section, include_descendants=True)
    SubscriptionFactory(page=section, include_descendants=False)  # the section only
    SubscriptionFactory(page=article, include_descendants=False)
    # Not counted.
    SubscriptionFactory(page=section, status="pending")
    SubscriptionFactory(page=article, status="unsubscribed")
    return {
        "home": (home, 1),
        "section": (section, 3),  # home's + its two
        "article": (article, 3),  # home's + the section's with descendants + its own
        "draft": (draft, 2),  # home's + the section's with descendants
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_content_inventory_rows(admin_client, generate, inventory, fmt):
    report_file = generate(admin_client, "content-inventory", fmt=fmt)
    assert report_file.record.status == TaskStatus.SUCCEEDED, report_file.record.error
    rows = rows_of(admin_client, report_file)
    assert rows[0] == [
        "ID",
        "Title",
        "URL",
        "Type",
        "Live",
        "Unpublished changes",
        "Last published at",
        "Owner",
        "Locale",
        "Subscribers",
    ]
    by_title = {row["Title"]: row for row in as_dicts(rows)}
    assert len(by_title) == report_file.rows == 4  # every page but the tree's root
    for page, subscribers in inventory.values():
        row = by_title[page.title]
        assert row["ID"] == cell(page.pk, fmt)
        assert row["Subscribers"] == cell(subscribers, fmt), page.title
        assert row["Locale"] == "en"
    article, _ = inventory["article"]
    row = by_title[article.title]
    assert row["URL"] == "http://testserver/news/big-news/"
    assert (row["Type"], row["Live"], row["Unpublished changes"]) == ("Article page", "Yes", "No")
    assert row["Owner"] == "olive"
    if fmt == "csv":
        assert row["Last published at"] == str(article.last_published_at)
    else:  # a real date cell, in UTC
        published = article.last_published_at.astimezone(UTC).replace(tzinfo=None)
        assert abs(row["Last published at"] - published).total_seconds() < 0.001
    draft = by_title["Draft news"]
    assert (draft["Live"], draft["Last published at"], draft["Owner"]) == (
        "No",
        cell(None, fmt),
        cell("" if fmt == "csv" else None, fmt),
    )
    assert by_title[inventory["section"][0].title]["Type"] == "Section page"
    # Rows in tree order.
    assert [row["Title"] for row in as_dicts(rows)] == [
        page.title for page in sorted((p for p, _ in inventory.values()), key=lambda p: p.path)
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_download_headers_name_and_size(admin_client, generate, site, fmt):
    report_file = generate(admin_client, "content-inventory", fmt=fmt)
    report_file.refresh_from_db()
    today = datetime.now(UTC).date().isoformat()
    assert report_file.filename == f"content-inventory-{today}.{fmt}"
    response = admin_client.get(f"/admin/reports/background/files/{report_file.pk}/download/")
    expected_type = "text/csv; charset=utf-8" if fmt == "csv" else XLSX_TYPE
    assert response["Content-Type"] == expected_type
    assert response["Content-Disposition"] == f'attachment; filename="{report_file.filename}"'
    content = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(content) == report_file.size > 0
    if fmt == "xlsx":
        assert content[:2] == b"PK"  # a zip: an Excel workbook
    page = admin_client.get(f"/admin/reports/background/files/{report_file.pk}/").content.decode()
    assert f"Download {report_file.filename}" in page
    assert f'data-rows="{report_file.rows}"' in page


def test_a_cell_that_looks_like_a_formula_stays_text(admin_client, generate, section):
    ArticlePageFactory(title="=HYPERLINK(1)", parent=section)
    csv_rows = as_dicts(rows_of(admin_client, generate(admin_client, "content-inventory")))
    assert "'=HYPERLINK(1)" in [row["Title"] for row in csv_rows]
    xlsx_file = generate(admin_client, "content-inventory", fmt="xlsx")
    sheet = load_workbook(io.BytesIO(downloaded(admin_client, xlsx_file))).worksheets[0]
    titles = {c.value: c.data_type for c in sheet["B"]}
    assert titles["=HYPERLINK(1)"] == "s"  # a string, not a formula


# Notifications ----------------------------------------------------------------------------


def notification_of(page, title, **deliveries):
    """A finished notification with deliveries of the given statuses (status=count)."""
    record = TaskRecord.objects.create(kind="notification", status=TaskStatus.SUCCEEDED)
    notification = Notification.objects.create(
        page=page, page_title=title, trigger=NotificationTrigger.REQUESTED, record=record
    )
    n = 0
    for status, count in deliveries.items():
        for _ in range(count):
            n += 1
            Delivery.objects.create(
                notification=notification, email_key=f"{notification.pk}-{n}", status=status
            )
    return notification


@pytest.mark.parametrize("fmt", FORMATS)
def test_notification_deliveries_counts(admin_client, generate, article, fmt):
    first = notification_of(article, "Big news", sent=3, failed=1, skipped=2)
    second = notification_of(None, "Deleted page", sent=1, pending=4)
    rows = rows_of(admin_client, generate(admin_client, "notification-deliveries", fmt=fmt))
    assert rows[0] == [
        "Notification",
        "Page",
        "Page ID",
        "When",
        "Trigger",
        "Status",
        "Sent",
        "Failed",
        "Skipped",
    ]
    data = as_dicts(rows)
    assert [row["Notification"] for row in data] == [cell(second.pk, fmt), cell(first.pk, fmt)]
    newest, oldest = data
    counts = [cell(v, fmt) for v in (3, 1, 2)]
    assert [oldest[k] for k in ("Page", "Page ID", "Sent", "Failed", "Skipped")] == [
        "Big news",
        cell(article.pk, fmt),
        *counts,
    ]
    assert (oldest["Trigger"], oldest["Status"]) == ("Requested by an editor", "Succeeded")
    assert [newest[k] for k in ("Page", "Page ID", "Sent", "Failed")] == [
        "Deleted page",
        cell(None, fmt),
        cell(1, fmt),
        cell(0, fmt),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_failed_deliveries_show_the_reason_and_forget_a_leaver(
    admin_client, generate, article, fmt
):
    notification = notification_of(article, "Big news", sent=2)
    stays = SubscriptionFactory(page=article, email="stays@example.com")
    leaves = SubscriptionFactory(page=article, email="leaves@example.com")
    for subscription, reason in ((stays, "550 mailbox full"), (leaves, "550 no such user")):
        Delivery.objects.create(
            notification=notification,
            subscription=subscription,
            email_key=subscription.email_key,
            status=DeliveryStatus.FAILED,
            attempts=2,
            reason=reason,
        )
    Subscription.objects.filter(pk=leaves.pk).delete()  # its delivery keeps no address

    report_file = generate(admin_client, "failed-deliveries", fmt=fmt)
    rows = rows_of(admin_client, report_file)
    assert rows[0] == ["Notification", "Page", "When", "Email", "Attempts", "Reason"]
    data = as_dicts(rows)
    assert report_file.rows == 2  # the sent ones are not listed
    by_reason = {row["Reason"]: row for row in data}
    assert by_reason["550 mailbox full"]["Email"] == "stays@example.com"
    assert by_reason["550 mailbox full"]["Attempts"] == cell(2, fmt)
    assert by_reason["550 mailbox full"]["Page"] == "Big news"
    assert by_reason[ERASED_REASON]["Email"] == cell("" if fmt == "csv" else None, fmt)
    assert by_reason[ERASED_REASON]["Notification"] == cell(notification.pk, fmt)


# Subscribers ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_subscribers_rows(admin_client, generate, section, article, fmt):
    SubscriptionFactory(page=article, email="b@example.com", include_descendants=False)
    SubscriptionFactory(page=section, email="z@example.com", status="pending")
    SubscriptionFactory(page=article, email="a@example.com")
    rows = rows_of(admin_client, generate(admin_client, "subscribers", fmt=fmt))
    assert rows[0] == [
        "Email",
        "Page",
        "Page ID",
        "Includes pages below",
        "Status",
        "Created at",
        "Confirmed at",
        "Unsubscribed at",
    ]
    data = as_dicts(rows)
    # By page (tree order), then email.
    assert [(r["Email"], r["Page"]) for r in data] == [
        ("z@example.com", "News"),
        ("a@example.com", "Big news"),
        ("b@example.com", "Big news"),
    ]
    assert [r["Includes pages below"] for r in data] == ["Yes", "Yes", "No"]
    assert [r["Status"] for r in data] == ["Waiting for confirmation", "Confirmed", "Confirmed"]
    assert data[1]["Page ID"] == cell(article.pk, fmt)


# Wagtail's own reports: the same rows as Wagtail's synchronous export ----------------------


@pytest.fixture
def history(site, section):
    """Pages published by two people at different times, and some other log entries."""
    alice = UserFactory(username="alice", is_superuser=True)
    bob = UserFactory(username="bob", is_superuser=True)
    pages = [ArticlePageFactory(title=f"Story {i}", parent=section, owner=alice) for i in range(4)]
    for i, page in enumerate(pages):
        publish(page, user=alice if i % 2 else bob)
    pages[0].title = "Story 0, renamed"
    pages[0].save_revision(user=alice)
    ArticlePageFactory(title="Never published", parent=section)
    section.save_revision(user=bob).publish(user=bob)
    return pages


def wagtail_export(client, url, params, fmt):
    response = client.get(url, {**params, "export": fmt})
    assert response.status_code == 200
    content = b"".join(response.streaming_content)
    return read_csv(content) if fmt == "csv" else read_xlsx(content)


WAGTAIL_REPORTS = [
    ("aging-pages", "/admin/reports/aging-pages/", {}),
    ("aging-pages", "/admin/reports/aging-pages/", {"content_type": "article"}),
    ("site-history", "/admin/reports/site-history/", {}),
    ("site-history", "/admin/reports/site-history/", {"action": "wagtail.publish"}),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("name", "url", "params"), WAGTAIL_REPORTS)
def test_wagtail_reports_match_wagtails_own_export(
    admin_client, generate, history, fmt, name, url, params
):
    if params.get("content_type") == "article":
        params = {"content_type": ContentType.objects.get(model="articlepage").pk}
    ours = rows_of(admin_client, generate(admin_client, name, params, fmt=fmt))
    theirs = wagtail_export(admin_client, url, params, fmt)
    assert ours == theirs
    assert len(ours) > 2  # not two empty reports


def test_wagtail_report_chunks_add_up(admin_client, generate, history, monkeypatch):
    """Several chunks (slices of Wagtail's queryset) give the rows of one export, in order."""
    from wagtail_tasks.reports.builtin import AgingPagesReport, SiteHistoryReport

    monkeypatch.setattr(AgingPagesReport, "chunk_size", 2)
    monkeypatch.setattr(SiteHistoryReport, "chunk_size", 3)
    for name, url in (
        ("aging-pages", "/admin/reports/aging-pages/"),
        ("site-history", "/admin/reports/site-history/"),
    ):
        ours = rows_of(admin_client, generate(admin_client, name))
        assert ours == wagtail_export(admin_client, url, {}, "csv")
        assert len(ours) > 4
