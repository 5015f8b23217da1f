"""The `mawb` command line: a thin shell over the library.

Every command loads its inputs through mawb, prints either human text or `--json`, and turns
expected failures (unreadable files, invalid flows, bad data) into one clear message and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mawb.model import FlowFileError, from_document, json_schema, read_document
from mawb.validate import FlowInvalidError, Report, validate_document

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mawb.model import Flow

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


class _Invalid(Exception):
    """A flow that failed validation, with the name the user gave it."""

    def __init__(self, source: str, report: Report) -> None:
        self.source = source
        self.report = report


@contextlib.contextmanager
def expected_failures(source: str = "") -> Iterator[None]:
    """Turn the failures a user can cause into an `error: ...` line and an exit code.

    Anything else is a bug and keeps its traceback. `source` names the input the messages
    are about when the exception does not (a data file, a flow).
    """
    from mawb.engine.store import StoreBusyError
    from mawb.intake import IntakeError

    prefix = f"{source}: " if source else ""
    try:
        yield
    except _Invalid as error:
        _print_diagnostics(error.source, error.report)
        raise fail(f"{error.source}: invalid flow ({len(error.report.errors)} errors); "
                   "nothing was changed", EXIT_INVALID) from None
    except FlowInvalidError as error:
        _print_diagnostics(source or "flow", error.report)
        raise fail(f"{prefix}invalid flow; nothing was changed", EXIT_INVALID) from None
    except IntakeError as error:
        raise _intake_failure(prefix, error) from None
    except (FlowFileError, StoreBusyError, OSError) as error:
        raise fail(str(error)) from None
    except (KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise fail(f"{prefix}{message}") from None


def _print_diagnostics(source: str, report: Report) -> None:
    for diagnostic in report.diagnostics:
        color = typer.colors.RED if diagnostic.severity == "error" else typer.colors.YELLOW
        typer.secho(f"{source}: {diagnostic}", fg=color, err=True)


def _intake_failure(prefix: str, error: Any) -> typer.Exit:
    """First problem on the `error:` line, the others (already capped) below it."""
    problems = [str(problem) for problem in error.problems]
    more = f" (+{len(problems) - 1} more problems below; nothing was imported)" if (
        len(problems) > 1) else " (nothing was imported)"
    exit_ = fail(f"{prefix}{problems[0]}{more}")
    for line in problems[1:20]:
        typer.echo(f"  {prefix}{line}", err=True)
    if len(problems) > 20:
        typer.echo(f"  ... and {len(problems) - 20} more", err=True)
    return exit_


def load_flow(spec: str) -> Flow:
    """A flow file, or the id of a template; invalid flows raise `_Invalid`."""
    from mawb.templates import load_template, template_ids

    path = Path(spec)
    if not path.exists() and spec in template_ids():
        document = load_template(spec).to_dict()
    else:
        document = read_document(path)
    report = validate_document(document)
    if not report.valid:
        raise _Invalid(spec, report)
    return from_document(document, spec)


def parse_params(flow: Flow, pairs: list[str]) -> dict[str, Any]:
    """`name=value` overrides, typed like the flow's own value of that param.

    Strings are taken as written (so Airflow can pass them unquoted); numbers and booleans
    are parsed, so `--param engagement_threshold=0.5` is a float.
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        name, separator, text = pair.partition("=")
        name = name.strip()
        if not separator or not name:
            raise ValueError(f"--param {pair!r}: expected name=value")
        if name not in flow.params:
            known = ", ".join(sorted(flow.params)) or "none"
            raise ValueError(f"--param {name}: flow {flow.id} has no such param (params: {known})")
        params[name] = _typed_value(name, text, flow.params[name])
    return params


def _typed_value(name: str, text: str, default: Any) -> Any:
    if isinstance(default, str):
        return text
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in {"true", "1", "yes"}:
            return True
        if lowered in {"false", "0", "no"}:
            return False
        raise ValueError(f"--param {name}: expected true or false, got {text!r}")
    try:
        number = json.loads(text)
    except json.JSONDecodeError:
        number = None
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise ValueError(f"--param {name}: expected a number, got {text!r}")
    return number


def parse_time(text: str, option: str = "--tick-time") -> datetime:
    """An ISO 8601 instant; a time without offset is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected an ISO 8601 time such as "
                         "2026-11-02T09:00:00+00:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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


HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="Workspace folder (default: MAWB_HOME or ./.mawb)")
]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", help="Override a flow param: name=value (repeat)")
]
STAGE_NAMES = ("_ingest", "_dispatch")


def _home(home: Path | None) -> Path:
    from mawb.engine.workspace import default_home

    return home if home is not None else default_home()


@app.command("step")
def step(
    flow_spec: Annotated[str, typer.Option("--flow", help="Flow file (or template id)")],
    node: Annotated[str, typer.Option(help="Node id, or _ingest / _dispatch")],
    tick_time: Annotated[str, typer.Option(help="The tick's time, ISO 8601 (UTC if no offset)")],
    partition: Annotated[int, typer.Option(min=0, help="Contact partition to run")] = 0,
    partitions: Annotated[int, typer.Option(min=1, help="Number of contact partitions")] = 1,
    home: HomeOpt = None,
    param: ParamOpt = None,
) -> None:
    """Run one stage of one tick for one partition: the idempotent entry point Airflow calls.

    Deploys (or checks) the flow version first, so an invalid flow changes nothing.
    """
    from mawb.engine import Workspace

    with expected_failures(flow_spec):
        flow = load_flow(flow_spec)
        if node not in STAGE_NAMES and node not in {n.id for n in flow.nodes}:
            raise ValueError(f"--node {node}: no such node in flow {flow.id} "
                             f"(nodes: {', '.join(n.id for n in flow.nodes)}; "
                             f"stages: {', '.join(STAGE_NAMES)})")
        if partition >= partitions:
            raise ValueError(f"--partition {partition} must be below --partitions {partitions}")
        params = {**flow.params, **parse_params(flow, param or [])}
        now = parse_time(tick_time)
        workspace = Workspace(_home(home), partitions)
        workspace.deploy(flow)
        workspace.step(flow, node, now, partition, params)
    typer.echo(f"{flow.id} v{flow.version}: {node} done for partition {partition}/{partitions} "
               f"at {now.isoformat()}")


def _register_compile() -> None:
    """`mawb compile`; its module imports only the compiler, which never imports Airflow."""
    from mawb.compile.cli import register

    register(app)


_register_compile()


def main() -> None:  # pragma: no cover - console entry point
    app()


@app.command()
def demo(home: Annotated[Path, typer.Option(help="Workspace folder")] = Path(".mawb")) -> None:
    """Create the demo workspace (demo contacts, events and a simulated history)."""
    home.mkdir(parents=True, exist_ok=True)
    typer.echo(f"demo workspace ready in {home}")
