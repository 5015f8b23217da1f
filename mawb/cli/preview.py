"""`mawb preview FLOW NODE --contact ID`: the exact message a node would send one contact.

Rendered by the engine's one renderer with the flow's params (and `--param` overrides), with the
headers the connection's provider would add (Message-ID, List-Unsubscribe, ...). Nothing is sent
or written. Exit 2 for an unknown flow, node or contact, or a template that does not render.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mawb.cli import (
    HomeOpt,
    JsonOpt,
    ParamOpt,
    _deployed,
    _home,
    emit_json,
    expected_failures,
    parse_params,
)


def register(app: typer.Typer) -> None:
    app.command("preview")(preview_command)


def preview_command(
    flow_spec: Annotated[str, typer.Argument(
        metavar="FLOW", help="Deployed flow id, flow file or template id")],
    node: Annotated[str, typer.Argument(metavar="NODE", help="The message node's id")],
    contact: Annotated[str, typer.Option("--contact", help="contact_id to render for")],
    param: ParamOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the exact rendered message (headers included) a node would send a contact."""
    from mawb.engine.preview import preview
    from mawb.engine.runner import workspace_at

    with expected_failures(flow_spec):
        workspace = workspace_at(_home(home))
        flow = _deployed(flow_spec, workspace)
        result = preview(flow, node, contact, parse_params(flow, param or []),
                         home=workspace.home)
    if as_json:
        emit_json(result.to_dict())
        return
    typer.echo(f"{result.flow} / {result.node} -> {result.contact_id}: {result.channel} "
               f"({result.audience}), via {result.connection or 'sandbox'}")
    if result.mime is not None:
        typer.echo(result.mime)
    else:
        for name, value in (("To", result.recipient), ("Subject", result.subject)):
            if value is not None:
                typer.echo(f"{name}: {value}")
        for name, value in result.headers.items():
            typer.echo(f"{name}: {value}")
        if result.body is not None:
            typer.echo("\n" + result.body)
        if result.html:
            typer.echo("\n[html]\n" + result.html)
        if result.payload:
            typer.echo("\n[payload] " + str(result.payload))
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
