import os

import pytest
from django.core import mail
from wagtail.models import Page, Site

from sandbox.mailsink import MailSink
from tests.factories import ArticlePageFactory, SectionPageFactory, SubscriptionFactory
from wagtail_tasks.testing import dummy_tasks  # noqa: F401  (the fixture users get)

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_sessionfinish(session, exitstatus):
    """Under CI=true a skipped test is a failure: every service the suite needs is there."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if ON_CI and skipped and exitstatus == 0:
        reporter.write_line(f"CI=true: {len(skipped)} test(s) skipped; failing the run.", red=True)
        session.exitstatus = 1


@pytest.fixture
def site(db):
    """The default site, on host testserver, with its home page.

    Wagtail's migrations create both, but a transactional test flushes them: recreate.
    """
    if not Page.objects.filter(depth=1).exists():
        root = Page.add_root(instance=Page(title="Root", slug="root"))
        root.add_child(instance=Page(title="Home", slug="home"))
    home = Page.objects.get(depth=2)
    site, _ = Site.objects.update_or_create(
        is_default_site=True,
        defaults={
            "hostname": "testserver",
            "port": 80,
            "site_name": "Test site",
            "root_page": home,
        },
    )
    return site


@pytest.fixture
def section(site):
    return SectionPageFactory(title="News", parent=site.root_page)


@pytest.fixture
def article(section):
    return ArticlePageFactory(title="Big news", parent=section)


@pytest.fixture
def subscribers(section):
    return SubscriptionFactory.create_batch(3, page=section)


@pytest.fixture
def outbox():
    mail.outbox = []
    return mail.outbox


@pytest.fixture
def smtp_sink():
    with MailSink() as sink:
        yield sink


def publish(page, user=None):
    """Publish the page's latest draft the way the editor does (a new revision, then publish)."""
    revision = page.save_revision(user=user)
    revision.publish(user=user)
    page.refresh_from_db()
    return revision


@pytest.fixture(autouse=True)
def fresh_cache():
    """Rate-limit counters live in the cache: every test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def report_dir(tmp_path, settings, monkeypatch):
    """Each test's report files in its own folder; worker processes it starts use it too."""
    folder = tmp_path / "reports"
    monkeypatch.setenv("WAGTAIL_TASKS_TEST_REPORT_DIR", str(folder))
    reports = {
        **settings.STORAGES["reports"],
        "OPTIONS": {"location": str(folder), "base_url": None},
    }
    settings.STORAGES = {**settings.STORAGES, "reports": reports}
    return folder
