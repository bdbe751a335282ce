"""A real SMTP server on loopback for tests that check the mails we send (Airflow's alerts,
statement deliveries). It can refuse addresses for good (550: a bounce) and stop listening
after some mails (a mail server going down mid-run)."""

from __future__ import annotations

import asyncio
import json
import socket
from email import message_from_bytes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """A real SMTP server on loopback (aiosmtpd); every message it accepts is kept."""

    def __init__(self, port: int | None = None, refuse: set[str] = frozenset(), stop_after: int | None = None,
                 delay_s: float = 0.0):
        from aiosmtpd.controller import Controller

        self.messages: list[dict] = []
        self.port = port or free_port()
        self.refuse = {a.lower() for a in refuse}
        self.stop_after = stop_after
        self.delay_s = delay_s  # per mail: a slower server, so kills land mid-conversation
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # aiosmtpd hook
        if address.lower() in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        msg = message_from_bytes(envelope.content)
        body = "".join(
            part.get_payload(decode=True).decode("utf-8", "replace")
            for part in msg.walk() if part.get_content_maintype() == "text"
        )  # fmt: skip
        self.messages.append({"to": envelope.rcpt_tos, "subject": str(msg["Subject"]), "body": body,
                              "message_id": "".join(str(msg["Message-ID"]).split())})  # unfolded
        if self.stop_after is not None and len(self.messages) >= self.stop_after:
            # stop listening: this conversation ends normally, every later connection is refused
            self.controller.server.close()
        return "250 OK"

    def connection(self) -> str:
        """Airflow's `smtp_default` connection pointing here (plain SMTP on loopback)."""
        return json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": self.port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "tributary@localhost", "timeout": 10},
        })  # fmt: skip

    def since(self, n: int) -> list[dict]:
        return self.messages[n:]

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
