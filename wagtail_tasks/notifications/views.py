"""Public views: subscribe (double opt-in), confirm and unsubscribe through signed links."""

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from wagtail_tasks import conf
from wagtail_tasks.notifications import ratelimit, tokens
from wagtail_tasks.notifications.forms import SubscribeForm
from wagtail_tasks.notifications.models import Subscription, SubscriptionStatus, email_key
from wagtail_tasks.tracking import enqueue

TEMPLATES = "wagtail_tasks/notifications/"


@require_http_methods(["GET", "POST"])
def subscribe(request: HttpRequest) -> HttpResponse:
    form = SubscribeForm(
        request.POST if request.method == "POST" else None,
        initial={"page": request.GET.get("page")},
    )
    if request.method == "POST" and not ratelimit.allow(
        "client",
        ratelimit.client_address(request),
        conf.get("WAGTAIL_TASKS_SUBSCRIBE_LIMIT_PER_CLIENT"),
    ):
        return render(
            request, TEMPLATES + "subscribe.html", {"form": form, "too_many": True}, status=429
        )
    if request.method == "POST" and form.is_valid():
        request_confirmation(
            form.cleaned_data["page"],
            form.cleaned_data["email"],
            form.cleaned_data["include_descendants"],
            request.user,
        )
        # The same answer whether or not the address was already subscribed: the page must not
        # tell a visitor who else is on the list.
        return render(
            request, TEMPLATES + "subscribe_done.html", {"page": form.cleaned_data["page"]}
        )
    status = 400 if request.method == "POST" else 200
    return render(request, TEMPLATES + "subscribe.html", {"form": form}, status=status)


def request_confirmation(page, email: str, include_descendants: bool, user) -> None:
    """Create or revive a pending subscription and email its confirmation link (in a task)."""
    from wagtail_tasks.notifications.tasks import KIND_CONFIRM, send_confirmation

    user = user if user.is_authenticated else None
    try:
        with transaction.atomic():
            subscription = (
                Subscription.objects.select_for_update()
                .filter(page=page, email__iexact=email)
                .first()
            )
            if subscription is None:
                subscription = Subscription.objects.create(
                    page=page, email=email, include_descendants=include_descendants, user=user
                )
            elif subscription.status == SubscriptionStatus.CONFIRMED:
                return
            if not ratelimit.allow(
                "address", email_key(email), conf.get("WAGTAIL_TASKS_CONFIRM_LIMIT_PER_ADDRESS")
            ):
                # Enough confirmation emails for this address for now: the subscription waits,
                # pending, and the visitor sees the usual answer (nothing to learn from it).
                return
            else:
                subscription.status = SubscriptionStatus.PENDING
                subscription.include_descendants = include_descendants
                subscription.confirmed_at = subscription.unsubscribed_at = None
                subscription.user = subscription.user or user
                subscription.save()
            enqueue(
                send_confirmation,
                subscription.pk,
                kind=KIND_CONFIRM,
                group=conf.SENDING,
                target=subscription,
                site=page.get_site(),
            )
    except IntegrityError:
        # A simultaneous request subscribed the same address first (the row lock above cannot
        # lock a row that does not exist yet): its confirmation email is on its way.
        return


def invalid_link(request: HttpRequest, error: tokens.InvalidToken) -> HttpResponse:
    return render(request, TEMPLATES + "invalid_link.html", {"error": str(error)}, status=400)


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button, POST confirms: mail scanners that follow links confirm nothing."""
    try:
        subscription = tokens.read_token(
            token, tokens.CONFIRM, max_age=conf.get("WAGTAIL_TASKS_CONFIRM_MAX_AGE")
        )
    except tokens.InvalidToken as error:
        return invalid_link(request, error)
    if subscription.status == SubscriptionStatus.UNSUBSCRIBED:
        return invalid_link(request, tokens.InvalidToken("This subscription was cancelled."))
    if request.method == "POST" and subscription.status == SubscriptionStatus.PENDING:
        Subscription.objects.filter(pk=subscription.pk, status=SubscriptionStatus.PENDING).update(
            status=SubscriptionStatus.CONFIRMED, confirmed_at=timezone.now()
        )
        subscription.refresh_from_db()
    return render(request, TEMPLATES + "confirm.html", {"subscription": subscription})


@csrf_exempt  # RFC 8058 one-click: mail clients POST without a CSRF token; the link is signed.
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscription = tokens.read_token(token, tokens.UNSUBSCRIBE)
    except tokens.InvalidToken as error:
        return invalid_link(request, error)
    if request.method == "POST" and subscription.status != SubscriptionStatus.UNSUBSCRIBED:
        Subscription.objects.filter(pk=subscription.pk).unsubscribe()
        subscription.refresh_from_db()
    return render(request, TEMPLATES + "unsubscribe.html", {"subscription": subscription})
