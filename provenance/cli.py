"""`tributary provenance ...`: fingerprint the generation log, manage API keys, serve the API."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from settlement import inputs
from settlement.config import Settings

provenance_app = typer.Typer(help="Provenance checks for streaming platforms and distributors.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of provenance clients.", no_args_is_help=True)
provenance_app.add_typer(keys_app, name="keys")


def _cli():
    from settlement import cli

    return cli


@provenance_app.command("index")
def index_cmd(limit: Annotated[int | None, typer.Option(help="at most this many generations")] = None) -> None:
    """Fingerprint every logged generation not fingerprinted yet (safe to kill and rerun).
    Example: tributary provenance index"""
    from provenance import index

    s = Settings.from_env()
    result = index.index(s.warehouse, s.lake, limit)
    _cli().console.print_json(json.dumps(result))


@keys_app.command("create")
def keys_create(
    client: Annotated[str, typer.Argument(help="who the key is for, e.g. 'Streamly Inc.'")],
    rate: Annotated[int, typer.Option(help="requests a minute")] = 60,
) -> None:
    """Create an API key; it is printed once and only its hash is stored.
    Example: tributary provenance keys create "Streamly Inc." --rate 120"""
    from provenance import keys

    cli = _cli()
    try:
        key = keys.create(Settings.from_env().warehouse, client, rate)
    except inputs.InputError as exc:
        cli._fail(str(exc), cli.USER_ERROR)
    typer.echo(key)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (the 12 hex digits after tpk_). Example: tributary provenance keys revoke 3f2a..."""
    from provenance import keys

    keys.revoke(Settings.from_env().warehouse, key_id)
    typer.echo(f"key {key_id} revoked")


@keys_app.command("list")
def keys_list() -> None:
    """Keys (ids, clients, limits; never secrets). Example: tributary provenance keys list"""
    from provenance import keys

    table = Table("key_id", "client", "rate/min", "created_at (UTC)", "revoked_at (UTC)")
    for k in keys.listed(Settings.from_env().warehouse):
        table.add_row(k["key_id"], k["client"], str(k["rate_per_minute"]), str(k["created_at"]), str(k["revoked_at"] or ""))
    _cli().console.print(table)


@provenance_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="address to listen on; loopback unless --public")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8100,
    public: Annotated[bool, typer.Option(help="allow a non-loopback address (put TLS in front)")] = False,
) -> None:
    """Serve the provenance check API (OpenAPI at /docs and /openapi.json).
    Example: tributary provenance serve --port 8100"""
    import uvicorn

    from provenance.app import create_app
    from settlement.warehouse import warehouse

    cli = _cli()
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not public:
        cli._fail(f"--host {host}: not a loopback address; pass --public to serve it (behind TLS)", cli.USER_ERROR)
    s = Settings.from_env()
    with warehouse(s.warehouse):  # migrated once, writable; requests then open it read-only
        pass
    uvicorn.run(create_app(Path(s.warehouse)), host=host, port=port, log_level="info")
