"""A real SMTP server on loopback that keeps what it receives (aiosmtpd).

Used by ``make demo`` (every message saved as an .eml file in a folder, and counted) and by the
test suite and benchmarks (messages kept in memory and counted).

    python -m sandbox.mailsink --port 1025 --folder var/mail
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import signal
import socket
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MailSink:
    """Start with ``with MailSink() as sink:``; ``sink.port``, ``sink.count``, ``sink.messages``.

    ``refuse`` is a set of addresses answered with 550 at RCPT, to test refused recipients.
    ``keep_messages=False`` only counts (for benchmarks that send many thousands).
    ``temporary_failures`` answers the first N messages with 451 (try again later), and
    ``accept_delay`` waits that many seconds before accepting each message (a slow server).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        folder: Path | str | None = None,
        refuse: set[str] | None = None,
        keep_messages: bool = True,
        temporary_failures: int = 0,
        accept_delay: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port or free_port()
        self.folder = Path(folder) if folder else None
        self.refuse = {address.lower() for address in refuse or ()}
        self.keep_messages = keep_messages
        self.temporary_failures = temporary_failures
        self.accept_delay = accept_delay
        self.refused_count = 0
        self.messages: list[EmailMessage] = []
        self.recipients: list[str] = []
        self.count = 0
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        if self.folder:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.count = len(list(self.folder.glob("*.eml")))

    # aiosmtpd handler hooks
    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        with self._lock:
            if self.refused_count < self.temporary_failures:
                self.refused_count += 1
                return "451 4.3.0 Try again later"
        if self.accept_delay:
            await asyncio.sleep(self.accept_delay)
        with self._lock:
            self.count += 1
            number = self.count
            self.recipients.extend(envelope.rcpt_tos)
            if self.keep_messages:
                self.messages.append(
                    email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[arg-type]
                )
        if self.folder:
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{number:06d}.eml"
            (self.folder / name).write_bytes(raw)
        return "250 Message accepted"

    def start(self) -> MailSink:
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until at least ``count`` messages arrived; True if they did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count >= count:
                return True
            time.sleep(0.05)
        return self.count >= count


def main() -> None:
    parser = argparse.ArgumentParser(description="A local SMTP server that keeps every message.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--folder", default="var/mail")
    args = parser.parse_args()
    sink = MailSink(args.host, args.port, folder=args.folder, keep_messages=False).start()
    print(f"SMTP server on {args.host}:{args.port}; messages saved in {args.folder}/", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    last = -1
    while not stop.wait(1.0):
        if sink.count != last:
            last = sink.count
            (Path(args.folder) / "COUNT").write_text(f"{last}\n")
    sink.stop()


if __name__ == "__main__":
    main()
