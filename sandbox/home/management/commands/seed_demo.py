"""``manage.py seed_demo [--subscribers N]``: the sandbox's content, admin user and subscribers.

Idempotent: every object is looked up before it is created, so running it again (with the
same or a larger N) adds only what is missing. It sends no email: the published articles are
saved as live directly, without ``revision.publish()`` and so without ``page_published``.
"""

from __future__ import annotations

import datetime
import io
import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.images import ImageFile
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont
from wagtail.images.models import Image
from wagtail.models import Page, Site

from sandbox.home.models import ArticlePage, BlogIndexPage, HomePage
from wagtail_tasks.models import Subscription
from wagtail_tasks.notifications.models import SubscriptionStatus

SITE_NAME = "wagtail-tasks sandbox"
DRAFT_TITLE = "Ready to publish"

ARTICLES: list[dict[str, Any]] = [
    {
        "title": "Publishing without waiting",
        "slug": "publishing-without-waiting",
        "days_ago": 9,
        "color": (47, 111, 115),
        "intro": "Why the Publish button should return at once, whatever it sets in motion.",
        "body": (
            "<p>When an editor publishes a page, Wagtail does more than flip a flag: it updates "
            "the search index, the reference index and, on this site, emails every subscriber."
            "</p><h2>Move the slow part out</h2><p>wagtail-tasks hands that work to a "
            "background task through Django's task API. The request commits, the worker picks "
            "the task up, and the editor sees its progress in the admin.</p>"
        ),
    },
    {
        "title": "A thousand emails, one connection",
        "slug": "a-thousand-emails-one-connection",
        "days_ago": 5,
        "color": (122, 74, 140),
        "intro": "Batching subscribers over a single SMTP connection per task.",
        "body": (
            "<p>One task per email caps delivery at the task rate. Instead a fan-out task "
            "creates one delivery row per address and enqueues send tasks of a hundred "
            "addresses each.</p><ul><li>Every delivery has a unique key, so a task can run "
            "twice.</li><li>Each email carries a one-click unsubscribe link.</li></ul>"
        ),
    },
    {
        "title": "Progress you can see",
        "slug": "progress-you-can-see",
        "days_ago": 2,
        "color": (176, 96, 38),
        "intro": "Tracking rows make every backend report progress the same way.",
        "body": (
            "<p>Each unit of background work has a tracking row: queued, running, succeeded, "
            "failed or cancelled, with a progress count and a message.</p><p>The admin reads "
            "only those rows, so it shows the same thing on the database backend, on RQ, or "
            "with tasks run in-process.</p>"
        ),
    },
]

DRAFT: dict[str, Any] = {
    "title": DRAFT_TITLE,
    "slug": "ready-to-publish",
    "days_ago": 0,
    "color": (36, 84, 160),
    "intro": "Publish me from the admin: every News subscriber gets an email.",
    "body": (
        "<p>This article is a draft. Publish it in the Wagtail admin and watch "
        "<code>var/mail/</code>: the worker sends one email per confirmed subscriber of the "
        "News section, in the background, while the admin stays responsive.</p>"
    ),
}


class Command(BaseCommand):
    help = "Create the sandbox site, its pages, an admin user and confirmed subscribers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--subscribers",
            type=int,
            default=1000,
            help="Confirmed subscribers of the News section (default: %(default)s).",
        )
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("DEMO_PORT", "8000")),
            help="The port of the site's URL, used in email links (default: $DEMO_PORT or 8000).",
        )

    def handle(self, *args: Any, subscribers: int, port: int, **options: Any) -> None:
        with transaction.atomic():
            home = self.ensure_home(port)
            news = self.ensure_news(home)
            for spec in ARTICLES:
                self.ensure_article(news, spec, live=True)
            self.ensure_article(news, DRAFT, live=False)
            self.ensure_admin()
        # After the articles: nothing published above could have notified anybody.
        created = self.ensure_subscribers(news, subscribers)
        total = Subscription.objects.filter(page=news).count()
        base = f"http://127.0.0.1:{port}"
        self.stdout.write(f"Subscribers of “{news.title}”: {total} ({created} new).")
        self.stdout.write(f"Site:  {base}/")
        self.stdout.write(f"Admin: {base}/admin/  (login admin / admin)")

    def ensure_home(self, port: int) -> HomePage:
        home = HomePage.objects.first()
        if home is None:
            root = Page.get_first_root_node()
            # Wagtail's "Welcome to your new Wagtail site!" page takes the slug "home"; its
            # Site goes with it (on_delete=CASCADE) and is recreated below.
            for page in root.get_children().filter(slug="home"):
                page.delete()
            home = root.add_child(
                instance=HomePage(
                    title="Welcome",
                    slug="home",
                    intro=(
                        "<p>A small Wagtail site that moves publishing work into background "
                        "tasks. Subscribe to the News section, or log into the admin and "
                        "publish the draft article.</p>"
                    ),
                )
            )
            mark_live(home)
            self.stdout.write("Created the home page.")
        site = Site.objects.filter(is_default_site=True).first() or Site(is_default_site=True)
        site.hostname, site.port, site.site_name = "127.0.0.1", port, SITE_NAME
        site.root_page = home
        site.save()
        return home

    def ensure_news(self, home: HomePage) -> BlogIndexPage:
        news = BlogIndexPage.objects.child_of(home).filter(slug="news").first()
        if news is None:
            news = home.add_child(
                instance=BlogIndexPage(
                    title="News",
                    slug="news",
                    show_in_menus=True,
                    intro="<p>What is new in wagtail-tasks.</p>",
                )
            )
            mark_live(news)
            self.stdout.write("Created the News section.")
        return news

    def ensure_article(self, news: BlogIndexPage, spec: dict[str, Any], live: bool) -> None:
        if ArticlePage.objects.child_of(news).filter(slug=spec["slug"]).exists():
            return
        date = timezone.localdate() - datetime.timedelta(days=spec["days_ago"])
        published_at = timezone.now() - datetime.timedelta(days=spec["days_ago"])
        article = ArticlePage(
            title=spec["title"],
            slug=spec["slug"],
            date=date,
            intro=spec["intro"],
            search_description=spec["intro"],
            body=spec["body"],
            feature_image=make_image(spec["title"], spec["color"]),
            live=live,
            # Saved live with its dates set, not published: page_published never fires.
            first_published_at=published_at if live else None,
            last_published_at=published_at if live else None,
        )
        news.add_child(instance=article)
        if live:
            mark_live(article)
        else:
            article.save_revision()
        self.stdout.write(f"Created {'article' if live else 'draft'} “{article.title}”.")

    def ensure_admin(self) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(username="admin").exists():
            user_model.objects.create_superuser("admin", "admin@sandbox.localhost", "admin")
            self.stdout.write("Created the superuser admin (password admin).")

    def ensure_subscribers(self, news: BlogIndexPage, count: int, batch: int = 2000) -> int:
        wanted = [f"reader{number:04d}@example.com" for number in range(1, count + 1)]
        existing = set(Subscription.objects.filter(page=news).values_list("email", flat=True))
        now = timezone.now()
        missing = [
            Subscription(
                page=news,
                email=email,
                include_descendants=True,
                status=SubscriptionStatus.CONFIRMED,
                confirmed_at=now,
            )
            for email in wanted
            if email not in existing
        ]
        for start in range(0, len(missing), batch):
            Subscription.objects.bulk_create(missing[start : start + batch], ignore_conflicts=True)
        return len(missing)


def mark_live(page: Page) -> None:
    """Give a page created live a live revision, as publishing would, but without publishing:
    no ``page_published`` signal, so no notification."""
    revision = page.save_revision()
    published_at = page.first_published_at or timezone.now()
    type(page).objects.filter(pk=page.pk).update(
        live_revision=revision,
        has_unpublished_changes=False,
        first_published_at=published_at,
        last_published_at=page.last_published_at or published_at,
    )


def make_image(title: str, color: tuple[int, int, int]) -> Image:
    """A feature image drawn at run time: a colored rectangle with the article's title."""
    existing = Image.objects.filter(title=title).first()
    if existing is not None:
        return existing
    width, height = 1200, 630
    picture = PILImage.new("RGB", (width, height), color)
    draw = ImageDraw.Draw(picture)
    # A lighter band and a circle, so renditions' crops are visible.
    light = tuple(min(255, channel + 40) for channel in color)
    draw.rectangle((0, height - 140, width, height), fill=light)
    draw.ellipse((width - 360, -120, width + 120, 360), fill=light)
    font = ImageFont.load_default(size=64)
    draw.text((70, height // 2 - 60), title, fill="white", font=font)
    small = ImageFont.load_default(size=32)
    draw.text((70, height - 95), SITE_NAME, fill="white", font=small)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    slug = title.lower().replace(" ", "-")
    image = Image(title=title, file=ImageFile(buffer, name=f"{slug}.png"))
    image.save()
    return image
