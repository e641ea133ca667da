"""Playwright on Debian's Chromium (``apt-get install chromium``), never a downloaded browser.

Every test here is marked ``browser``. Without /usr/bin/chromium they are skipped with the
reason, except on CI (``.ci/run`` installs Chromium), where they fail with it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ON_CI

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = os.environ.get("WAGTAIL_TASKS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def missing_browser() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (
            f"browser tests need Chromium at {CHROMIUM} "
            "(Debian: apt-get install chromium; .ci/run installs it)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests need the playwright package (make install: the [test] extra)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = missing_browser()
    browser_items = [item for item in items if item.get_closest_marker("browser")]
    if reason is None or not browser_items or ON_CI:
        return  # on CI never a skip: the chromium fixture fails the test with the reason
    for item in browser_items:
        item.add_marker(pytest.mark.skip(reason=reason))
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"SKIPPING {len(browser_items)} browser test(s): {reason}", yellow=True, bold=True
        )


FAILED_CALL = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[FAILED_CALL] = report.failed
    return report


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def chromium(monkeypatch):
    """A headless Chromium browser driven by Playwright (the pip package's driver)."""
    if reason := missing_browser():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop in this thread (in a greenlet), so Django
    # would take the test's own ORM calls for calls from async code. They are not: allow them
    # for the duration of the browser (the documented switch for this case).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            # While Playwright's loop is running, Django keeps the connections that this
            # thread opens in the loop's context, where pytest-django never closes them
            # (PostgreSQL would then refuse to drop the test database): close them here.
            connections.close_all()
            browser.close()


@pytest.fixture
def browser_page(chromium, request):
    """A fresh page; when the test fails, a screenshot of it goes to artifacts/browser/."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
        if request.node.stash.get(FAILED_CALL, False):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failed.png"), full_page=True)
    finally:
        context.close()
