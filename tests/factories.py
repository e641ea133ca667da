"""factory-boy factories for pages, subscriptions and users."""

import factory
from django.contrib.auth import get_user_model
from wagtail.models import Page

from tests.testapp.models import ArticlePage, PlainPage, SectionPage
from wagtail_tasks.notifications.models import Subscription, SubscriptionStatus


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("password")


class SuperuserFactory(UserFactory):
    is_staff = True
    is_superuser = True


class PageFactory(factory.Factory):
    """Builds a page and adds it under ``parent`` (default: the site root page)."""

    class Meta:
        model = Page

    title = factory.Sequence(lambda n: f"Page {n}")
    parent = None
    live = True

    @classmethod
    def _create(cls, model_class, *args, parent=None, **kwargs):
        parent = parent or Page.objects.get(depth=2)
        live = kwargs.pop("live")
        page = model_class(*args, live=live, **kwargs)
        parent.add_child(instance=page)
        return page


class SectionPageFactory(PageFactory):
    class Meta:
        model = SectionPage


class ArticlePageFactory(PageFactory):
    """An article saved as a draft (not live): publish it to trigger notifications."""

    class Meta:
        model = ArticlePage

    live = False
    body = "<p>Some text.</p>"


class PlainPageFactory(PageFactory):
    class Meta:
        model = PlainPage

    live = False


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    email = factory.Sequence(lambda n: f"reader{n}@example.com")
    status = SubscriptionStatus.CONFIRMED
    include_descendants = True


class TaskRecordFactory(factory.django.DjangoModelFactory):
    """A tracking row; FAILED rows of ``count_to`` can be retried (see tests/testapp/tasks.py)."""

    class Meta:
        model = "wagtail_tasks.TaskRecord"

    kind = "notification"
    target_repr = factory.Sequence(lambda n: f"Target {n}")
    status = "queued"
    backend_alias = "default"
    queue_name = "default"
    task_path = "tests.testapp.tasks.count_to"
    group = "notifications"
    args = factory.LazyFunction(lambda: [2])


def editor(*codenames: str):
    """A Wagtail editor (admin access) with the given wagtail_tasks permissions."""
    from django.contrib.auth.models import Group, Permission

    user = UserFactory(username=f"editor-{'-'.join(codenames) or 'none'}")
    group = Group.objects.create(name=f"group-{user.username}")
    group.permissions.add(Permission.objects.get(codename="access_admin"))
    for codename in codenames:
        group.permissions.add(Permission.objects.get(codename=codename))
    user.groups.add(group)
    return user
