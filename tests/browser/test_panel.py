"""Issue 3: a real browser watches the page editor's Tasks panel while a real worker sends.

Everything is real: Django's live server on the test database, the Wagtail admin in headless
Chromium, the django-tasks-db ``db_worker`` in a subprocess, and an SMTP server on loopback.
The browser publishes an article that 300 people subscribe to, reopens it, opens the "Tasks"
tab and, without reloading, watches the notification's progress bar go to 100%.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from sandbox.mailsink import MailSink
from tests.factories import SubscriptionFactory, SuperuserFactory
from tests.worker import ROOT, worker_command, worker_env
from wagtail_tasks.models import FINISHED_STATUSES, TaskStatus
from wagtail_tasks.notifications.models import Delivery, DeliveryStatus, Notification

pytestmark = [
    # serialized_rollback: the flush after the test removes what Wagtail's migrations created.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.worker,
    pytest.mark.browser,
]

SUBSCRIBERS = 300
BATCH_SIZE = 25  # 12 send batches: the bar has steps to show
# The mail server takes 15 ms per message (about 4.5 s for all): a slow-ish SMTP server, so
# that the panel's polling can see the bar between 0 and 100% instead of only its end.
ACCEPT_DELAY = 0.015

PANEL = '[data-controller="wagtail-tasks-panel"]'
BAR = f'{PANEL} .wagtail-tasks-progress[data-kind="notification"]'

# Records every data-percent the bar (selector) shows, whether the panel changes the
# attribute or replaces its HTML, and marks the window so that a reload would be noticed.
WATCH_PERCENTS = """
(selector) => {
    window.__marker = 1;
    window.__percents = [];
    const record = () => {
        const bar = document.querySelector(selector);
        if (!bar) return;
        const value = Number(bar.dataset.percent);
        const seen = window.__percents;
        if (seen.length === 0 || seen[seen.length - 1] !== value) seen.push(value);
    };
    record();
    new MutationObserver(record).observe(document.body, {
        subtree: true, childList: true, attributes: true, attributeFilter: ["data-percent"],
    });
}
"""


@pytest.fixture
def smtp_sink():
    with MailSink(accept_delay=ACCEPT_DELAY) as sink:
        yield sink


@pytest.fixture
def database_routes(settings):
    # The live server runs in this process: its publish enqueues on the database backend.
    settings.WAGTAIL_TASKS = {
        "notifications": {"backend": "database"},
        "sending": {"backend": "database"},
    }


@pytest.fixture
def worker(smtp_sink):
    """Starts the real db_worker on demand (``worker.start()``); stops it at the end."""

    class Worker:
        process: subprocess.Popen[str] | None = None

        def start(self) -> None:
            self.process = subprocess.Popen(
                worker_command(),
                env=worker_env(smtp_sink.port, batch_size=BATCH_SIZE),
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )

        def stop(self) -> str:
            if self.process is None:
                return ""
            if self.process.poll() is None:
                self.process.terminate()
            try:
                out, _ = self.process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                out, _ = self.process.communicate()
            return out or ""

    handle = Worker()
    yield handle
    handle.stop()


def log_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.locator('form button[type="submit"]').click()
    assert "/admin/login/" not in page.url, "login failed"


def click_publish(page) -> None:
    """Wagtail's action menu: "Publish" is the footer dropdown's main button or one of its
    items (wagtailadmin/pages/action_menu/publish.html); open the dropdown when needed."""
    publish = page.locator('button[name="action-publish"][value="action-publish"]')
    if not publish.is_visible():
        dropdown = page.locator(".w-dropdown-button").filter(has=publish)
        dropdown.get_by_role("button", name="More actions").click()
    with page.expect_navigation():
        publish.click()


def test_panel_progress_reaches_100_without_reload(
    browser_page,  # first: fails or starts before any data is made
    live_server,
    section,
    article,
    smtp_sink,
    database_routes,
    worker,
    artifacts,
):
    SuperuserFactory(username="editor", password="password")
    subscribers = SubscriptionFactory.create_batch(SUBSCRIBERS, page=section)
    page = browser_page
    base = live_server.url
    edit_url = f"{base}/admin/pages/{article.pk}/edit/"

    log_in(page, base, "editor", "password")
    page.goto(edit_url)
    click_publish(page)
    article.refresh_from_db()
    assert article.live
    # No worker yet: the fan-out waits in the database backend's queue.
    notification = Notification.objects.get()
    assert notification.record.status == TaskStatus.QUEUED
    assert smtp_sink.count == 0

    # Reopen the article, open its Tasks tab: the panel shows the queued notification.
    page.goto(edit_url)
    page.get_by_role("tab", name="Tasks").click()
    bar = page.locator(BAR)
    bar.wait_for(state="visible")
    first_percent = int(bar.get_attribute("data-percent"))
    assert first_percent < 100

    page.evaluate(WATCH_PERCENTS, BAR)
    navigations = []
    page.on(
        "framenavigated",
        lambda frame: navigations.append(frame.url) if frame == page.main_frame else None,
    )
    started = time.monotonic()
    worker.start()
    page.wait_for_function(
        "(selector) => document.querySelector(selector)?.dataset.percent === '100'",
        arg=BAR,
        timeout=45_000,
    )
    elapsed = time.monotonic() - started
    percents = page.evaluate("window.__percents")
    page.screenshot(path=str(artifacts / "panel-100.png"), full_page=True)
    (artifacts / "panel-100.json").write_text(
        json.dumps({"first_percent": first_percent, "percents": percents, "seconds": elapsed})
        + "\n"
    )

    # The same document all along: no reload, no navigation.
    assert page.evaluate("window.__marker") == 1
    assert navigations == []
    assert percents[-1] == 100
    assert percents[0] < 100, percents  # the bar was seen below 100% before it filled up
    assert percents == sorted(percents), f"progress went backwards: {percents}"

    # Every subscriber got exactly one message.
    assert smtp_sink.wait_for(SUBSCRIBERS, timeout=10)
    record = notification.record
    deadline = time.monotonic() + 10
    while record.status not in FINISHED_STATUSES and time.monotonic() < deadline:
        time.sleep(0.1)
        record.refresh_from_db()
    output = worker.stop()
    assert smtp_sink.count == SUBSCRIBERS, output[-3000:]
    assert sorted(smtp_sink.recipients) == sorted(s.email for s in subscribers)
    assert record.status == TaskStatus.SUCCEEDED, record.error
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == SUBSCRIBERS
