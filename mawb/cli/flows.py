"""`mawb flows list | live ID | pause ID | stop ID`: which flows run, and setting their state.

`list` reads the stores read-only (safe while the service runs). A lifecycle change is applied
directly when no service runs; while one runs it is sent to the service as a command (the one
writer applies it within about a second) and the command's outcome is printed.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mawb.cli import HomeOpt, JsonOpt, _home, emit_json, expected_failures

flows_app = typer.Typer(help="Deployed flows and their lifecycle (draft, live, paused, "
                        "stopped).", no_args_is_help=True)
FlowIdArg = Annotated[str, typer.Argument(metavar="FLOW_ID", help="A deployed flow id")]
NoteOpt = Annotated[str | None, typer.Option(help="Why (kept with the change)")]


def register(app: typer.Typer) -> None:
    app.add_typer(flows_app, name="flows")


def flow_rows(home: Any) -> list[dict[str, Any]]:
    """id, latest version, state (who/when), contacts active and last tick of every flow."""
    from mawb.engine import lifecycle
    from mawb.engine.workspace import Workspace

    return lifecycle.overview(Workspace(home))


@flows_app.command("list")
def list_flows(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Every deployed flow: latest version, state, contacts active, last tick."""
    with expected_failures():
        rows = flow_rows(_home(home))
    if as_json:
        emit_json(rows)
        return
    if not rows:
        typer.echo("no flows deployed (mawb run FLOW --once deploys one)")
        return
    width = max(len("flow"), *(len(r["id"]) for r in rows))
    typer.echo(f"{'flow':<{width}}  {'version':>7}  {'state':<8}  {'active':>7}  last tick")
    for r in rows:
        typer.echo(f"{r['id']:<{width}}  {r['version']:>7}  {r['state']:<8}  {r['active']:>7}  "
                   f"{r['last_tick'] or 'never'}")


def change_state(home: Any, flow_id: str, state: str, note: str | None) -> str:
    """Apply (no service) or send (service running) one lifecycle change; returns the outcome."""
    from mawb.engine import lifecycle
    from mawb.engine.workspace import Workspace
    from mawb.service import client

    running = client.running(home)
    if running is None:
        made = lifecycle.change(Workspace(home), flow_id, state, note=note)
        return f"{flow_id} is {made.state.value} (by {made.changed_by})"
    if not Workspace(home).versions(flow_id):
        raise lifecycle.LifecycleError(f"flow {flow_id!r} is not deployed (deploy it first)")
    receipt = client.submit(home, [client.command("lifecycle", flow_id=flow_id, state=state,
                                                  note=note)])
    return command_outcome(home, running, receipt)


def command_outcome(home: Any, running: Any, receipt: str) -> str:
    """Wait for the service to apply a command file; raise ValueError if one failed."""
    from mawb.service import client

    found = client.outcomes(home, receipt)
    if found is None:
        return (f"{running.describe()}; the change is queued ({receipt}) and applies when the "
                "service reaches it")
    failed = [f"{command}: {detail}" for _, command, status, detail in found
              if status != "done"]
    if failed:
        raise ValueError(f"the service refused it: {'; '.join(failed)}")
    return f"{running.describe()}; applied: " + "; ".join(str(row[3]) for row in found)


def _lifecycle_command(state: str, doc: str) -> Any:
    def command(flow_id: FlowIdArg, home: HomeOpt = None, note: NoteOpt = None) -> None:
        with expected_failures(flow_id):
            typer.echo(change_state(_home(home), flow_id, state, note))

    command.__doc__ = doc
    return command


flows_app.command("live")(_lifecycle_command(
    "live", "Set a deployed flow live (or resume a paused one)."))
flows_app.command("pause")(_lifecycle_command(
    "paused", "Pause a flow: contacts stay where they are; nothing is sent until it is live."))
flows_app.command("stop")(_lifecycle_command(
    "stopped", "Stop a flow: its active contacts exit with reason 'flow stopped'."))


@flows_app.command("deploy")
def deploy(
    flow_spec: Annotated[str, typer.Argument(metavar="FLOW", help="Flow file or template id")],
    live: Annotated[bool, typer.Option("--live", help="Set it live once deployed")] = False,
    home: HomeOpt = None,
) -> None:
    """Save a flow version (checked against the workspace's contacts), optionally live."""
    from mawb.cli import _command, _route_to_service, deploy_checked, load_flow
    from mawb.engine import lifecycle
    from mawb.engine.runner import workspace_at

    home = _home(home)
    with expected_failures(flow_spec):
        flow = load_flow(flow_spec)
    records = [_command("deploy", flow=flow.to_dict())]
    if live:
        records.append(_command("lifecycle", flow_id=flow.id, state="live"))
    if _route_to_service(home, records, flow_spec):
        return
    with expected_failures(flow_spec):
        workspace = workspace_at(home)
        deploy_checked(workspace, flow, flow_spec)
        state = lifecycle.change(workspace, flow.id, "live").state if live else (
            lifecycle.state_of(workspace, flow.id))
    typer.echo(f"{flow.id} v{flow.version} deployed; {state.value}")
