"""`mawb keys create | list | revoke`: the API keys of the service's `/v1` endpoints.

Keys live hashed in the workspace's keys.json (`mawb.service.keys`); the full key is printed
once, by `create`. A running service picks up changes on its next request.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mawb.cli import HomeOpt, JsonOpt, _home, emit_json, expected_failures

keys_app = typer.Typer(help="API keys for the service's /v1 endpoints.", no_args_is_help=True)


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who or what uses the key, e.g. website")],
    rate: Annotated[float | None, typer.Option(
        help="Requests per second allowed (default: the service's default, 100)")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from mawb.service.keys import create_key

    with expected_failures():
        record, key = create_key(_home(home), name, rate)
    if as_json:
        emit_json({**record.public(), "key": key})
        return
    typer.echo(key)
    typer.echo(f"key {record.id} ({record.name}) created; it is shown only now: store it in "
               "your secret manager. Send it as 'Authorization: Bearer <key>'.", err=True)


@keys_app.command("list")
def list_keys(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Every key with its name, rate and state (never the secret)."""
    from mawb.service.keys import read_keys

    with expected_failures():
        keys = [key.public() for key in read_keys(_home(home))]
    if as_json:
        emit_json(keys)
        return
    if not keys:
        typer.echo("no API keys (mawb keys create NAME)")
        return
    for key in keys:
        state = "active" if key["active"] else f"revoked {key['revoked_at']}"
        rate = f"{key['rate']:g}/s" if key["rate"] else "default rate"
        typer.echo(f"{key['id']}  {key['name']:<20}  {rate:<12}  created {key['created_at']}"
                   f"  {state}")


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id")],
           home: HomeOpt = None) -> None:
    """Revoke a key; the service refuses it from its next request on."""
    from mawb.service.keys import revoke_key

    with expected_failures():
        record = revoke_key(_home(home), key_id)
    typer.echo(f"key {record.id} ({record.name}) revoked at {record.revoked_at}")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
