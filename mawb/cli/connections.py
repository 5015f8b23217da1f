"""`mawb connections list | test NAME`: the workspace's delivery connections.

`list` shows each connection's kind, target, pacing and secret references (and whether each
resolves here; values are never printed). `test` performs the provider's real handshake (SMTP
EHLO + STARTTLS + AUTH then QUIT; an authenticated HTTP HEAD/GET) and sends nothing. Exit 2 when
connections.yaml is invalid or the name unknown, 1 when the handshake fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from mawb.cli import EXIT_INVALID, HomeOpt, JsonOpt, _home, emit_json, fail

if TYPE_CHECKING:
    from pathlib import Path

connections_app = typer.Typer(help="Delivery connections (connections.yaml).",
                              no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(connections_app, name="connections")


def _load(home: Path) -> dict[str, Any]:
    from mawb.channels.connections import ConnectionsError, load_connections

    try:
        return load_connections(home)
    except ConnectionsError as error:
        raise _fail_problems(error.problems) from None


def _fail_problems(problems: list[str]) -> typer.Exit:
    more = f" (+{len(problems) - 1} more below)" if len(problems) > 1 else ""
    exit_ = fail(problems[0] + more)
    for line in problems[1:]:
        typer.echo(f"  {line}", err=True)
    return exit_


def _describe(connection: Any) -> dict[str, Any]:
    from mawb.channels.connections import SecretError

    secrets: dict[str, dict[str, Any]] = {}
    for field, ref in connection.secret_refs().items():
        try:
            connection.secret(field)
            secrets[field] = {"ref": ref, "resolves": True}
        except SecretError as error:
            secrets[field] = {"ref": ref, "resolves": False, "error": str(error)}
    return {"name": connection.name, "kind": connection.kind, "target": connection.summary(),
            "rate_per_second": connection.rate_per_second,
            "concurrency": connection.concurrency, "timeout_seconds": connection.timeout_seconds,
            "tracking": connection.tracking, "allow_hosts": connection.allow_hosts,
            "secrets": secrets}


@connections_app.command("list")
def list_command(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List the connections; channels without one are delivered by the sandbox."""
    connections = _load(_home(home))
    rows = [_describe(connection) for connection in connections.values()]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        typer.echo("no connections: every channel is delivered by the sandbox (nothing is sent); "
                   "add them to connections.yaml")
        return
    for row in rows:
        rate = f"{row['rate_per_second']:g}/s" if row["rate_per_second"] else "unpaced"
        typer.echo(f"{row['name']:<16} {row['kind']:<9} {row['target']}  ({rate}, "
                   f"{row['concurrency']} at once, tracking {'on' if row['tracking'] else 'off'})")
        for field, secret in row["secrets"].items():
            state = "ok" if secret["resolves"] else f"UNRESOLVED: {secret['error']}"
            typer.echo(f"{'':<16} {field}: {secret['ref']} ({state})")


@connections_app.command("test")
def test_command(
    name: Annotated[str, typer.Argument(help="Connection name in connections.yaml")],
    home: HomeOpt = None,
) -> None:
    """Handshake with the connection's server (login included); nothing is sent."""
    from mawb.channels.base import CheckFailed
    from mawb.channels.connections import LinkContext, SecretError, provider_for

    workspace = _home(home)
    connections = _load(workspace)
    if name not in connections:
        known = ", ".join(sorted(connections)) or "none"
        raise fail(f"no connection {name!r} in connections.yaml (connections: {known})")
    try:
        provider = provider_for(connections[name], LinkContext(secret=b"", base_url=""))
    except (SecretError, ValueError) as error:
        raise fail(f"{name}: {error}") from None
    try:
        summary = provider.check()
    except CheckFailed as error:
        raise fail(f"{name}: {error}", EXIT_INVALID) from None
    typer.echo(f"{name}: {summary}")
