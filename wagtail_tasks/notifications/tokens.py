"""Signed tokens for confirmation and unsubscribe links.

A token names one subscription and carries a keyed hash of its address, so it cannot be
guessed, and cannot be reused for another address even by someone who knows a subscription id.
"""

from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac

from wagtail_tasks.notifications.models import Subscription

CONFIRM = "confirm"
UNSUBSCRIBE = "unsubscribe"


class InvalidToken(Exception):
    """The link was tampered with, has expired, or names a subscription that is gone."""


def _address_hash(purpose: str, email: str) -> str:
    return salted_hmac(
        f"wagtail_tasks.{purpose}", email.strip().lower(), algorithm="sha256"
    ).hexdigest()[:20]


def make_token(subscription: Subscription, purpose: str) -> str:
    return signing.dumps(
        {"s": subscription.pk, "a": _address_hash(purpose, subscription.email)},
        salt=f"wagtail_tasks.{purpose}",
    )


def read_token(token: str, purpose: str, max_age: float | None = None) -> Subscription:
    try:
        data = signing.loads(token, salt=f"wagtail_tasks.{purpose}", max_age=max_age)
    except signing.SignatureExpired as exc:
        raise InvalidToken("This link has expired.") from exc
    except signing.BadSignature as exc:
        raise InvalidToken("This link is not valid.") from exc
    subscription = Subscription.objects.select_related("page").filter(pk=data.get("s")).first()
    if subscription is None or not constant_time_compare(
        data.get("a", ""), _address_hash(purpose, subscription.email)
    ):
        raise InvalidToken("This link is not valid.")
    return subscription
