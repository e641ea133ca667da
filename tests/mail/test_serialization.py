"""Serialising messages: every field round-trips; what cannot be carried fails in the caller."""

import json

import pytest
from django.core.mail import EmailMessage

from tests.mail.helpers import PNG, full_message, parsed, summary
from wagtail_tasks.mail.serialization import MessageNotSerializable, deserialize, serialize


def round_trip(message, **kwargs):
    data = json.loads(json.dumps(serialize(message, **kwargs)))  # really through JSON
    return data, deserialize(data, kwargs.get("store") and STORE.__getitem__)


STORE: dict[str, bytes] = {}


def store(content: bytes) -> str:
    name = f"f{len(STORE)}"
    STORE[name] = content
    return name


def test_every_field_round_trips():
    message = full_message()
    _, rebuilt = round_trip(message)
    assert type(rebuilt) is type(message)
    for field in ("subject", "body", "from_email", "to", "cc", "bcc", "reply_to"):
        assert getattr(rebuilt, field) == getattr(message, field), field
    assert rebuilt.extra_headers == message.extra_headers
    assert rebuilt.encoding == "iso-8859-1"
    assert [tuple(a) for a in rebuilt.alternatives] == [tuple(a) for a in message.alternatives]
    assert [tuple(a) for a in rebuilt.attachments[:3]] == [
        tuple(a) for a in message.attachments[:3]
    ]
    assert rebuilt.attachments[1][1] == PNG  # bytes stay bytes
    assert rebuilt.attachments[3].as_bytes() == message.attachments[3].as_bytes()
    assert summary(parsed(rebuilt)) == summary(parsed(message))


def test_html_body_and_name_address_pairs_round_trip():
    message = EmailMessage(
        "Hi", "<p>Hi</p>", "site@example.com", [("Ann Example", "ann@example.com")]
    )
    message.content_subtype = "html"
    _, rebuilt = round_trip(message)
    assert rebuilt.content_subtype == "html"
    assert rebuilt.to == [("Ann Example", "ann@example.com")]
    assert summary(parsed(rebuilt)) == summary(parsed(message))


def test_large_contents_go_to_the_store_not_the_payload():
    message = full_message()
    data, rebuilt = round_trip(message, store=store, limit=1000)
    logo = data["attachments"][1]["content"]
    assert set(logo) == {"file", "binary"} and STORE[logo["file"]] == PNG
    assert "text" in data["attachments"][0]["content"]  # small ones stay inline
    assert rebuilt.attachments[1][1] == PNG
    assert summary(parsed(rebuilt)) == summary(parsed(message))


class MessageWithExtras(EmailMessage):
    pass


def local_class_message():
    class Local(EmailMessage):
        pass

    return Local("s", "b", "site@example.com", ["a@example.com"])


def with_attribute(**attributes):
    message = EmailMessage("s", "b", "site@example.com", ["a@example.com"])
    for name, value in attributes.items():
        setattr(message, name, value)
    return message


def with_attachment(attachment):
    message = EmailMessage("s", "b", "site@example.com", ["a@example.com"])
    message.attachments.append(attachment)
    return message


BAD_MESSAGES = {
    "body not text": (
        lambda: with_attribute(body=object()),
        "The message's body must be a string, not object.",
    ),
    "to as a string": (
        lambda: with_attribute(to="a@example.com"),
        "The message's to must be a list, not a string.",
    ),
    "header value": (
        lambda: with_attribute(extra_headers={"X-When": object()}),
        "The message's header 'X-When' must be a string, not object.",
    ),
    "attachment content": (
        lambda: with_attachment(("n.bin", 42, "application/octet-stream")),
        "The content of attachment 'n.bin' must be str or bytes, not int.",
    ),
    "attachment shape": (
        lambda: with_attachment("just a name"),
        "Each attachment must be (filename, content, mimetype) or a MIME part, not str.",
    ),
    "subclass data": (
        lambda: with_attribute(merge_data={"a": 1}),
        "EmailMessage has attributes the worker cannot rebuild: merge_data.",
    ),
    "encoding": (
        lambda: with_attribute(encoding=3),
        "The message's encoding must be a charset name, not int.",
    ),
    "local class": (
        local_class_message,
        "The message's class tests.mail.test_serialization.local_class_message.<locals>.Local "
        "cannot be imported by name in the worker; define it at module level.",
    ),
}


@pytest.mark.parametrize("case", BAD_MESSAGES)
def test_what_cannot_be_serialised_is_refused_by_name(case):
    make, error = BAD_MESSAGES[case]
    with pytest.raises(MessageNotSerializable) as raised:
        serialize(make())
    assert str(raised.value) == error


def test_a_module_level_subclass_is_rebuilt_as_itself():
    _, rebuilt = round_trip(MessageWithExtras("s", "b", "site@example.com", ["a@example.com"]))
    assert type(rebuilt) is MessageWithExtras
