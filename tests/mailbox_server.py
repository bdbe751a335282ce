"""A real SMTP server on loopback for tests that check the alert mails Airflow sends."""

from __future__ import annotations

import json
import socket
from email import message_from_bytes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """A real SMTP server on loopback (aiosmtpd); every message it accepts is kept."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list[dict] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        msg = message_from_bytes(envelope.content)
        body = "".join(
            part.get_payload(decode=True).decode("utf-8", "replace")
            for part in msg.walk() if part.get_content_maintype() == "text"
        )  # fmt: skip
        self.messages.append({"to": envelope.rcpt_tos, "subject": str(msg["Subject"]), "body": body})
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
