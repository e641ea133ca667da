"""Messages with every field, and a comparison of what arrives at a mail server."""

from __future__ import annotations

import email
import email.policy
from email.message import Message

from django.core.mail import EmailMessage, EmailMultiAlternatives

from wagtail_tasks.mail.serialization import mime_part

PNG = bytes(range(256)) * 8  # binary, every byte value


def full_message() -> EmailMultiAlternatives:
    """Every field Django's email messages have, with text, binary and MIME attachments."""
    message = EmailMultiAlternatives(
        subject="Résumé du café",
        body="Bonjour,\nvoici le café.\n",
        from_email="Le Site <site@example.com>",
        to=["Ann <ann@example.com>", "bob@example.com"],
        cc=["carol@example.com"],
        bcc=["dave@example.com"],
        reply_to=["Help <help@example.com>"],
        headers={"X-Campaign": "42", "Message-ID": "<fixed-id@example.com>"},
    )
    message.encoding = "iso-8859-1"
    message.attach_alternative("<p>Bonjour, voici le <b>café</b>.</p>", "text/html")
    message.attach_alternative("BEGIN:VCALENDAR\nEND:VCALENDAR\n", "text/calendar")
    message.attach("notes.csv", "nom,prix\ncafé,2\n", "text/csv")
    message.attach("logo.png", PNG, "image/png")
    message.attach(None, b"\x00\x01 no name", "application/octet-stream")
    message.attach(mime_part(b"Content-Type: text/plain\n\nA MIME part attached as it is.\n"))
    return message


def plain_message(to: str = "reader@example.com", subject: str = "Hello") -> EmailMessage:
    return EmailMessage(subject=subject, body="Body", from_email="site@example.com", to=[to])


# Set per sending (Date, Message-ID unless given) or per serialisation (multipart boundaries).
VARYING_HEADERS = {"date", "message-id"}


def summary(message: Message) -> dict:
    """What a reader sees: the top-level headers and every part's type, name and bytes."""
    headers = sorted(
        (name.lower(), str(value))
        for name, value in message.items()
        if name.lower() not in VARYING_HEADERS and name.lower() != "content-type"
    )
    parts = [
        (
            part.get_content_type(),
            part.get_filename(),
            part.get_content_charset(),
            None if part.is_multipart() else part.get_payload(decode=True),
        )
        for part in message.walk()
    ]
    return {"headers": headers, "parts": parts}


def parsed(message: EmailMessage) -> Message:
    """A Django message as a mail server would parse it."""
    return email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)
