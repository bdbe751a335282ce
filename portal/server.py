"""`tributary portal`: serve the portal with uvicorn (one process: the sign-in rate limit and
the warehouse's single writer both want one)."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import uvicorn

from portal.app import PortalConfig, create_app, secret_key, secure_cookies_for
from settlement.config import Settings


def serve(settings: Settings, host: str, port: int, public_url: str | None, forwarded_allow_ips: str) -> None:
    secure = secure_cookies_for(host, public_url)
    if public_url and urlsplit(public_url).scheme != "https" and secure:
        raise SystemExit(f"--public-url {public_url}: holders reach the portal over https only")
    flush_s = float(os.environ.get("TRIBUTARY_PORTAL_LOG_FLUSH_S", "2"))
    config = PortalConfig(settings=settings, secret_key=secret_key(settings.home), secure_cookies=secure,
                          access_log_flush_s=flush_s)  # fmt: skip
    uvicorn.run(create_app(config), host=host, port=port, proxy_headers=True,
                forwarded_allow_ips=forwarded_allow_ips, server_header=False, access_log=False)
