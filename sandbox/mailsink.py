"""A local mail server for the demo (aiosmtpd on loopback): the statement mails the close sends
are written to TRIBUTARY_HOME/outbox/ as .eml files, one per mail, so a person can open them.
Used only when no real server is configured (TRIBUTARY_SMTP_HOST unset)."""

from __future__ import annotations

import os
import re
import socket
from contextlib import contextmanager
from email import message_from_bytes
from pathlib import Path


class _Outbox:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        msg = message_from_bytes(envelope.content)
        key = re.sub(r"[^0-9A-Za-z]", "", str(msg["Message-ID"]))[:64] or f"{len(list(self.folder.iterdir())):06d}"
        (self.folder / f"{key}.eml").write_bytes(envelope.content)
        return "250 OK"


@contextmanager
def mail_sink(home: Path):
    if os.environ.get("TRIBUTARY_SMTP_HOST"):
        yield None
        return
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(_Outbox(Path(home) / "outbox"), hostname="127.0.0.1", port=port)
    controller.start()
    saved = {k: os.environ.get(k) for k in ("TRIBUTARY_SMTP_HOST", "TRIBUTARY_SMTP_PORT")}
    os.environ.update({"TRIBUTARY_SMTP_HOST": "127.0.0.1", "TRIBUTARY_SMTP_PORT": str(port)})
    try:
        yield Path(home) / "outbox"
    finally:
        controller.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
