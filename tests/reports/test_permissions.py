"""Who may do what: every report view, for anonymous, unprivileged, owning, other, super users."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client, RequestFactory
from wagtail.admin.menu import reports_menu
from wagtail.models import GroupPagePermission

from tests.factories import ArticlePageFactory, SectionPageFactory, SuperuserFactory, UserFactory
from tests.reports.conftest import as_dicts, file_url, report_url, rows_of
from wagtail_tasks.models import TaskStatus
from wagtail_tasks.reports.models import ReportFile
from wagtail_tasks.testing import run_enqueued

pytestmark = pytest.mark.django_db

INDEX = "/admin/reports/background/"
FORBIDDEN = b"You may not see this report."
ALL_REPORTS = [
    "content-inventory",
    "notification-deliveries",
    "failed-deliveries",
    "subscribers",
    "aging-pages",
    "site-history",
]


def user_with(username, *codenames):
    """An admin user whose group has these wagtail_tasks permissions."""
    user = UserFactory(username=username)
    group = Group.objects.create(name=f"group-{username}")
    group.permissions.add(*Permission.objects.filter(codename__in=["access_admin", *codenames]))
    user.groups.add(group)
    return user


def client_for(user):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def people(site):
    return {
        "owner": user_with("owner", "view_subscription"),
        "colleague": user_with("colleague", "view_subscription"),
        "nobody": user_with("nobody"),
        "superuser": SuperuserFactory(username="root"),
    }


@pytest.fixture
def owned_file(people, generate):
    """A finished subscribers report file of ``owner``."""
    report_file = generate(client_for(people["owner"]), "subscribers")
    assert report_file.record.status == TaskStatus.SUCCEEDED
    return report_file


def assert_forbidden(response):
    assert response.status_code == 403
    assert response.content == FORBIDDEN  # our plain 403, not Wagtail's redirect


def assert_login_redirect(response):
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


FILE_VIEWS = [("file", "get"), ("file_status", "get"), ("download", "get"), ("cancel", "post")]


@pytest.mark.parametrize(("view", "method"), FILE_VIEWS)
def test_file_views_for_each_kind_of_user(people, owned_file, view, method):
    url = file_url(view, owned_file)

    def call(who):
        return getattr(client_for(people.get(who)), method)(url)

    assert_login_redirect(call("anonymous"))
    assert_forbidden(call("nobody"))
    assert_forbidden(call("colleague"))  # may run the report, but did not ask for this file
    for who in ("owner", "superuser"):
        response = call(who)
        if view == "cancel":  # allowed, but it had finished: back to the file page
            assert response.status_code == 302
            assert response["Location"] == file_url("file", owned_file)
        else:
            assert response.status_code == 200, (who, response.status_code)
    owned_file.record.refresh_from_db()
    assert owned_file.record.status == TaskStatus.SUCCEEDED


@pytest.mark.parametrize("who", ["anonymous", "nobody", "owner", "superuser"])
def test_index_and_report_pages(people, who, run_tasks):
    client = client_for(people.get(who))
    responses = [
        client.get(INDEX),
        client.get(report_url("subscribers")),
    ]
    with run_tasks():
        responses.append(client.post(report_url("subscribers"), {"format": "csv"}))
    if who == "anonymous":
        for response in responses:
            assert_login_redirect(response)
        assert not ReportFile.objects.exists()
    elif who == "nobody":
        for response in responses:
            assert_forbidden(response)
        assert not ReportFile.objects.exists()
    else:
        index, form, posted = responses
        assert index.status_code == 200 and form.status_code == 200
        assert 'data-report="subscribers"' in index.content.decode()
        assert posted.status_code == 302
        report_file = ReportFile.objects.get()
        assert report_file.record.requested_by == people[who]
        assert report_file.record.status == TaskStatus.SUCCEEDED


def test_a_user_sees_only_the_reports_they_may_run(people):
    index = client_for(people["owner"]).get(INDEX).content.decode()
    assert 'data-report="subscribers"' in index
    for name in set(ALL_REPORTS) - {"subscribers"}:
        assert f'data-report="{name}"' not in index
        assert_forbidden(client_for(people["owner"]).get(report_url(name)))
    everything = client_for(people["superuser"]).get(INDEX).content.decode()
    for name in ALL_REPORTS:
        assert f'data-report="{name}"' in everything


def test_the_index_lists_only_the_users_own_files(people, generate):
    mine = generate(client_for(people["owner"]), "subscribers")
    theirs = generate(client_for(people["colleague"]), "subscribers")
    index = client_for(people["owner"]).get(INDEX).content.decode()
    assert f'data-report-file="{mine.pk}"' in index
    assert f'data-report-file="{theirs.pk}"' not in index
    form = client_for(people["owner"]).get(report_url("subscribers")).content.decode()
    assert f'data-report-file="{mine.pk}"' in form
    assert f'data-report-file="{theirs.pk}"' not in form


def menu_names(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return [
        item.name
        for item in reports_menu.menu_items_for_request(request)
        if item.name.startswith("wagtail-tasks-report")
    ]


def test_reports_menu_shows_our_items_only_to_those_allowed(people):
    assert menu_names(people["nobody"]) == []
    assert menu_names(people["owner"]) == [
        "wagtail-tasks-report-subscribers",
        "wagtail-tasks-report-files",
    ]
    assert menu_names(people["superuser"]) == [
        *(f"wagtail-tasks-report-{name}" for name in ALL_REPORTS),
        "wagtail-tasks-report-files",
    ]
    # And in the real admin page's sidebar.
    home = client_for(people["owner"]).get("/admin/").content.decode()
    assert "wagtail-tasks-report-subscribers" in home
    assert "wagtail-tasks-report-content-inventory" not in home


def test_page_editors_get_the_page_reports_for_their_pages_only(site, section, generate):
    elsewhere = SectionPageFactory(title="Elsewhere", parent=site.root_page)
    ArticlePageFactory(title="Hidden", parent=elsewhere)
    ArticlePageFactory(title="Mine", parent=section)
    editor = user_with("page-editor")
    group = editor.groups.get()
    for permission_type in ("add", "change", "publish"):
        GroupPagePermission.objects.create(
            group=group, page=section, permission_type=permission_type
        )
    assert menu_names(editor) == [
        "wagtail-tasks-report-content-inventory",
        "wagtail-tasks-report-aging-pages",
        "wagtail-tasks-report-site-history",
        "wagtail-tasks-report-files",
    ]
    client = client_for(editor)
    rows = as_dicts(rows_of(client, generate(client, "content-inventory")))
    assert [row["Title"] for row in rows] == ["News", "Mine"]
    assert_forbidden(client.get(report_url("subscribers")))


def test_an_owner_who_lost_the_permission_may_no_longer_see_the_file(people, owned_file):
    people["owner"].groups.get().permissions.remove(
        Permission.objects.get(codename="view_subscription")
    )
    for view, method in FILE_VIEWS:
        assert_forbidden(getattr(client_for(people["owner"]), method)(file_url(view, owned_file)))
    assert client_for(people["superuser"]).get(file_url("download", owned_file)).status_code == 200


def test_losing_the_permission_before_the_worker_runs_fails_with_no_file(
    people, dummy_tasks, report_dir, run_tasks
):
    with run_tasks():
        response = client_for(people["owner"]).post(report_url("subscribers"), {"format": "csv"})
    assert response.status_code == 302
    report_file = ReportFile.objects.get()
    assert report_file.record.status == TaskStatus.QUEUED
    people["owner"].groups.get().permissions.remove(
        Permission.objects.get(codename="view_subscription")
    )
    run_enqueued()
    report_file.refresh_from_db()
    record = report_file.record
    record.refresh_from_db()
    assert record.status == TaskStatus.FAILED
    assert "owner may no longer run the report “Subscribers”" in record.error
    assert report_file.stored_name == "" and report_file.size is None
    assert not any(p.is_file() for p in report_dir.rglob("*"))
    page = client_for(people["superuser"]).get(file_url("file", report_file)).content.decode()
    assert "may no longer run the report" in page
    assert "wagtail-tasks-report-download" not in page
