"""A Django email message as plain JSON, and back: every field, nothing lost, nothing guessed.

:func:`serialize` runs in the caller (``send_messages``) and raises
:class:`MessageNotSerializable`, naming the field, for anything it cannot carry to the worker;
:func:`deserialize` runs in the worker and rebuilds a message of the same class with the same
fields. Large contents are handed to ``store`` (bytes in, a name out) and read back with ``load``.
"""

from __future__ import annotations

import base64
import email
import email.policy
from collections.abc import Callable
from email.message import Message
from email.mime.base import MIMEBase
from typing import Any

from django.core.mail import EmailAttachment, EmailMessage, EmailMultiAlternatives
from django.utils.functional import Promise
from django.utils.module_loading import import_string

VERSION = 1

# What an EmailMessage (or EmailMultiAlternatives) holds. An instance attribute outside this
# list is a subclass's own data, which the worker could not rebuild: refused, not dropped.
KNOWN_ATTRIBUTES = frozenset(
    {
        "subject",
        "body",
        "from_email",
        "to",
        "cc",
        "bcc",
        "reply_to",
        "extra_headers",
        "attachments",
        "alternatives",
        "connection",
        "_connection",
        "encoding",
        "content_subtype",
        "mixed_subtype",
        "alternative_subtype",
    }
)
# Django 5.2's class attributes, removed in 6.1: carried only when a message changes them.
OPTIONAL_SUBTYPES = {"mixed_subtype": "mixed", "alternative_subtype": "alternative"}

Store = Callable[[bytes], str]
Load = Callable[[str], bytes]


class MessageNotSerializable(ValueError):
    """An email message holds something that cannot be sent through a task."""


def serialize(message: EmailMessage, store: Store | None = None, limit: int = 0) -> dict:
    """The message as JSON-safe data. Contents over ``limit`` bytes go to ``store``."""
    if not isinstance(message, EmailMessage):
        raise MessageNotSerializable(
            f"Expected a django.core.mail.EmailMessage, got {type(message).__name__}."
        )
    cls = type(message)
    path = f"{cls.__module__}.{cls.__qualname__}"
    try:
        importable = import_string(path) is cls
    except ImportError:
        importable = False
    if not importable:
        raise MessageNotSerializable(
            f"The message's class {path} cannot be imported by name in the worker; "
            "define it at module level."
        )
    unknown = sorted(set(vars(message)) - KNOWN_ATTRIBUTES)
    if unknown:
        raise MessageNotSerializable(
            f"{cls.__name__} has attributes the worker cannot rebuild: {', '.join(unknown)}."
        )

    def content(value: Any, field: str) -> dict:
        return encode_content(value, field, store, limit)

    data: dict[str, Any] = {
        "version": VERSION,
        "class": path,
        "subject": text(message.subject, "subject"),
        "body": text(message.body, "body"),
        "from_email": text(message.from_email, "from_email"),
        "to": addresses(message.to, "to"),
        "cc": addresses(message.cc, "cc"),
        "bcc": addresses(message.bcc, "bcc"),
        "reply_to": addresses(message.reply_to, "reply_to"),
        "headers": [
            [text(name, "headers"), header_value(value, name)]
            for name, value in (message.extra_headers or {}).items()
        ],
        "encoding": encoding_name(message.encoding),
        "content_subtype": text(message.content_subtype, "content_subtype"),
        "alternatives": [
            {
                "content": content(alternative[0], "alternatives"),
                "mimetype": text(alternative[1], "alternatives"),
            }
            for alternative in getattr(message, "alternatives", None) or []
        ],
        "attachments": [attachment_data(attachment, content) for attachment in message.attachments],
    }
    for name, default in OPTIONAL_SUBTYPES.items():
        value = getattr(message, name, default)
        if value != default:
            data[name] = text(value, name)
    return data


def deserialize(data: dict, load: Load | None = None) -> EmailMessage:
    """Rebuild the message :func:`serialize` described, of the same class."""
    if data.get("version") != VERSION:
        raise ValueError(f"Unknown serialised email version {data.get('version')!r}.")
    cls = import_string(data["class"])
    message = cls.__new__(cls)
    EmailMessage.__init__(
        message,
        subject=data["subject"],
        body=data["body"],
        from_email=data["from_email"],
        to=[address_from_json(a) for a in data["to"]],
        cc=[address_from_json(a) for a in data["cc"]],
        bcc=[address_from_json(a) for a in data["bcc"]],
        reply_to=[address_from_json(a) for a in data["reply_to"]],
        headers=dict(data["headers"]),
    )
    if data["encoding"] is not None:
        message.encoding = data["encoding"]
    if data["content_subtype"] != type(message).content_subtype:
        message.content_subtype = data["content_subtype"]
    for name in OPTIONAL_SUBTYPES:
        if name in data:
            setattr(message, name, data[name])
    if isinstance(message, EmailMultiAlternatives) or data["alternatives"]:
        message.alternatives = []
        for alternative in data["alternatives"]:
            message.attach_alternative(
                decode_content(alternative["content"], load), alternative["mimetype"]
            )
    for attachment in data["attachments"]:
        if attachment["kind"] == "mime":
            message.attachments.append(mime_part(decode_content(attachment["content"], load)))
        else:
            # Appended as stored, not through attach(): attach() would guess or change the type.
            message.attachments.append(
                attachment_tuple(
                    attachment["filename"],
                    decode_content(attachment["content"], load),
                    attachment["mimetype"],
                )
            )
    return message


def stored_names(data: dict) -> list[str]:
    """The names of the contents of ``data`` that live in the storage."""
    contents = [a["content"] for a in data["alternatives"]]
    contents += [a["content"] for a in data["attachments"]]
    return [c["file"] for c in contents if "file" in c]


# --- fields --------------------------------------------------------------------------------


def text(value: Any, field: str) -> str:
    if isinstance(value, Promise):  # lazy translations
        value = str(value)
    if not isinstance(value, str):
        raise MessageNotSerializable(
            f"The message's {field} must be a string, not {type(value).__name__}."
        )
    return value


def addresses(values: Any, field: str) -> list:
    if isinstance(values, str):
        raise MessageNotSerializable(f"The message's {field} must be a list, not a string.")
    result: list[str | list[str]] = []
    for value in values or []:
        if isinstance(value, tuple | list) and len(value) == 2:  # (name, address)
            result.append([text(value[0], field), text(value[1], field)])
        else:
            result.append(text(value, field))
    return result


def address_from_json(value: str | list[str]) -> str | tuple[str, str]:
    return value if isinstance(value, str) else (value[0], value[1])


def header_value(value: Any, name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return text(value, f"header {name!r}")


def encoding_name(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    charset = getattr(value, "input_charset", None)  # an email.charset.Charset
    if isinstance(charset, str):
        return charset
    raise MessageNotSerializable(
        f"The message's encoding must be a charset name, not {type(value).__name__}."
    )


def attachment_data(attachment: Any, content: Callable[[Any, str], dict]) -> dict:
    if isinstance(attachment, Message):  # a MIME part attached as it is
        return {"kind": "mime", "content": content(attachment.as_bytes(), "attachments")}
    if not isinstance(attachment, tuple | list) or len(attachment) != 3:
        raise MessageNotSerializable(
            "Each attachment must be (filename, content, mimetype) or a MIME part, "
            f"not {type(attachment).__name__}."
        )
    filename, value, mimetype = attachment
    if isinstance(value, EmailMessage):  # message/rfc822 of a Django message
        value = value.message().as_bytes()
    elif isinstance(value, Message):
        value = value.as_bytes()
    return {
        "kind": "file",
        "filename": None if filename is None else text(filename, "attachment filename"),
        "content": content(value, f"attachment {filename!r}"),
        "mimetype": None if mimetype is None else text(mimetype, "attachment mimetype"),
    }


def encode_content(value: Any, field: str, store: Store | None, limit: int) -> dict:
    """``{"text": str}``, ``{"base64": str}`` or ``{"file": name, "binary": bool}``."""
    if isinstance(value, Promise):
        value = str(value)
    if isinstance(value, bytearray | memoryview):
        value = bytes(value)
    if isinstance(value, str):
        raw, binary = value.encode("utf-8", "surrogateescape"), False
    elif isinstance(value, bytes):
        raw, binary = value, True
    else:
        raise MessageNotSerializable(
            f"The content of {field} must be str or bytes, not {type(value).__name__}."
        )
    if store is not None and len(raw) > limit:
        return {"file": store(raw), "binary": binary}
    if binary:
        return {"base64": base64.b64encode(raw).decode("ascii")}
    return {"text": value}


def decode_content(data: dict, load: Load | None) -> str | bytes:
    if "text" in data:
        return data["text"]
    if "base64" in data:
        return base64.b64decode(data["base64"])
    if load is None:
        raise ValueError("This message has stored contents and no storage to read them from.")
    raw = load(data["file"])
    return raw if data["binary"] else raw.decode("utf-8", "surrogateescape")


def attachment_tuple(filename: str | None, content: str | bytes, mimetype: str | None) -> Any:
    return EmailAttachment(filename, content, mimetype)


def mime_part(raw: bytes) -> Message:
    """A MIME part attached as it is. Django 6.1 takes MIMEPart; 5.2 only MIMEBase."""
    if not hasattr(EmailMessage, "mixed_subtype"):  # Django 6: the modern email API
        return email.message_from_bytes(raw, policy=email.policy.default)
    parsed = email.message_from_bytes(raw)
    maintype, subtype = parsed.get_content_type().split("/", 1)
    part = MIMEBase(maintype, subtype)
    for name in list(part.keys()):
        del part[name]
    for name, value in parsed.items():
        part[name] = value
    part.set_payload(parsed.get_payload())
    return part
