"""`mawb deliver`: run the dispatcher once — what a runner does after each tick.

The embedded runner and the service call the dispatcher themselves; this command is for the
compiled Airflow DAG (its last task) and for operators draining a queue by hand. It claims,
sends with the store closed and records per batch (see docs/architecture.md, section 4), so it
is safe to run while nothing else writes; while a service runs for the workspace it refuses,
because the service is that workspace's one writer and delivers by itself.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mawb.cli import HomeOpt, JsonOpt, _home, _refuse_while_serving, emit_json, expected_failures


def register(app: typer.Typer) -> None:
    app.command("deliver")(deliver_command)


def deliver_command(
    flow: Annotated[list[str] | None, typer.Option(
        "--flow", help="Only this flow's rows (repeat); default every flow")] = None,
    max_batches: Annotated[int | None, typer.Option(
        "--max-batches", min=1, max=1_000_000, help="Stop after this many batches")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deliver the queued messages of connected channels once (claim, send, record)."""
    from mawb.engine.deliver import deliver
    from mawb.engine.runner import workspace_at

    folder = _home(home)
    _refuse_while_serving(folder, "it delivers by itself; nothing was changed")
    with expected_failures(str(folder)):
        report = deliver(workspace_at(folder), flow_ids=flow, max_batches=max_batches)
    summary = {"claimed": report.claimed, "sent": report.sent, "retried": report.retried,
               "dead": report.dead, "cached": report.cached, "batches": report.batches,
               "errors": report.errors, "overhead": round(report.overhead, 4)}
    if as_json:
        emit_json(summary)
        return
    typer.echo(f"delivered {report.sent} of {report.claimed} claimed in {report.batches} "
               f"batch(es); {report.retried} to retry, {report.dead} dead"
               + (f", {report.cached} answered from cache" if report.cached else ""))
    for error, count in sorted(report.errors.items()):
        typer.echo(f"  {count} x {error}", err=True)
