"""The `mawb` command line: a thin shell over the library.

Every command loads its inputs through mawb, prints either human text or `--json`, and turns
expected failures (unreadable files, invalid flows, bad data) into one clear message and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import sys
import tempfile
import warnings
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mawb.model import FlowFileError, read_document
from mawb.validate import FlowInvalidError, Report, check_document, validate_document, validate_flow

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
MAX_DAYS = 3650  # simulated days
MAX_SYNTHETIC = 1_000_000  # synthetic contacts

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
        with _stage_warnings():
            yield
    except _Invalid as error:
        _print_diagnostics(error.source, error.report)
        errors = len(error.report.errors)
        raise fail(f"{error.source}: invalid flow ({errors} error{'s' * (errors != 1)}); "
                   "nothing was changed", EXIT_INVALID) from None
    except FlowInvalidError as error:
        _print_diagnostics(source or "flow", error.report)
        raise fail(f"{prefix}invalid flow; nothing was changed", EXIT_INVALID) from None
    except IntakeError as error:
        raise _intake_failure(prefix, error) from None
    except (FlowFileError, StoreBusyError, OSError) as error:
        raise fail(str(error)) from None
    except (ValueError, OverflowError) as error:  # bad options, params, intervals, versions
        raise fail(f"{prefix}{error}") from None
    except RecursionError:
        raise fail(f"{prefix}nested too deeply to read") from None


@contextlib.contextmanager
def _stage_warnings() -> Iterator[None]:
    """Print each run-time stage failure (`StageFailed`) once, as a `warning:` line, as it
    happens; a node failing on bad data never turns into a traceback or a silent count."""
    from mawb.engine.workspace import StageFailed

    shown: set[str] = set()
    original = warnings.showwarning

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if not issubclass(category, StageFailed):
            original(message, category, *args, **kwargs)
        elif str(message) not in shown:
            shown.add(str(message))
            typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", StageFailed)
        warnings.showwarning = show
        yield


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
    if path.exists():
        flow, report = check_document(read_document(path))
    elif spec in template_ids():
        flow = load_template(spec)
        report = validate_flow(flow)
    else:
        raise FlowFileError(spec, "no such flow file or template id (see mawb templates list)")
    if flow is None or not report.valid:
        raise _Invalid(spec, report)
    return flow


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
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"--param {name}: expected a finite number, got {text!r}")
    if isinstance(number, int) and abs(number) > 2**63 - 1:
        raise ValueError(f"--param {name}: {text} is outside the range of a 64-bit number")
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
    """Print the JSON Schema of the flow file format, every node type with its params.

    Point an editor at it ("$schema" in a flow file, or VS Code's json.schemas) to have
    unknown types, misspelt params and wrongly typed values flagged as you type."""
    from mawb.nodes.schema import flow_schema

    emit_json(flow_schema())


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


def _home(home: Path | None) -> Path:
    from mawb.engine.workspace import default_home

    return home if home is not None else default_home()


@app.command("step")
def step(
    flow_spec: Annotated[str, typer.Option("--flow", help="Flow file (or template id)")],
    node: Annotated[str, typer.Option(help="Node id, or _ingest / _dispatch")],
    tick_time: Annotated[str, typer.Option(help="The tick's time, ISO 8601 (UTC if no offset)")],
    partition: Annotated[int, typer.Option(min=0, help="Contact partition to run")] = 0,
    partitions: Annotated[int | None, typer.Option(
        min=1, help="Number of contact partitions (must match the workspace's)")] = None,
    home: HomeOpt = None,
    param: ParamOpt = None,
    xcom_file: Annotated[Path | None, typer.Option(
        help="Also write the stage's row counts here as JSON (a pod's XCom file)")] = None,
) -> dict[str, dict[str, int]]:
    """Run one stage of one tick for one partition: the idempotent entry point Airflow calls.

    Deploys (or checks) the flow version first, so an invalid flow changes nothing. `--param`
    overrides apply to this flow version only; `--node _drain` advances the flow's other
    versions that still hold contacts, each with its own params; `--node _tick` runs every
    stage of the partition's tick in this one process; `--node _deliver` sends the queued rows of
    connected channels (claim, send with the store closed, record). Prints (and returns, for an
    in-process Airflow task's XCom) the rows the stage wrote per node and event.
    """
    from mawb.engine import DISPATCH, INGEST, Workspace, manifest
    from mawb.engine.deliver import STAGE as DELIVER
    from mawb.engine.deliver import deliver
    from mawb.engine.workspace import DRAIN, TICK, tick_counts

    with expected_failures(flow_spec):
        flow = load_flow(flow_spec)
        if node not in {INGEST, DISPATCH, DRAIN, TICK, DELIVER, *(n.id for n in flow.nodes)}:
            raise ValueError(f"--node {node}: no such node in flow {flow.id} "
                             f"(nodes: {', '.join(n.id for n in flow.nodes)}; "
                             f"stages: {INGEST}, {DISPATCH}, {DRAIN}, {TICK}, {DELIVER})")
        params = {**flow.params, **parse_params(flow, param or [])}
        now = parse_time(tick_time)
        count = manifest.resolve(_home(home), partitions)  # checked before anything is written
        if partition >= count:
            raise ValueError(f"--partition {partition} must be below --partitions {count}"
                             + ("" if partitions else " (the workspace's count)"))
        workspace = Workspace(_home(home), partitions)
        deploy_checked(workspace, flow, flow_spec, params, partition)
        if node == DELIVER:  # network I/O with the store closed: not a tick stage
            report = deliver(workspace, [flow.id], partitions=[partition])
            counts = {DELIVER: {"claimed": report.claimed, "sent": report.sent,
                                "retried": report.retried, "dead": report.dead}}
        else:
            workspace.step(flow, node, now, partition, params)
            with workspace.connection(partition, read_only=True) as connection:
                counts = tick_counts(connection, flow, _naive(now),
                                     None if node in (TICK, DRAIN, DISPATCH) else [node])
    typer.echo(f"{flow.id} v{flow.version}: {node} done for partition {partition}/"
               f"{workspace.partitions} at {now.isoformat()}; rows {json.dumps(counts)}")
    if xcom_file is not None:
        xcom_file.parent.mkdir(parents=True, exist_ok=True)
        xcom_file.write_text(json.dumps(counts), encoding="utf-8")
    return counts


def _naive(moment: datetime) -> datetime:
    from mawb.engine.store import utc_naive

    return utc_naive(moment)


class Responses(StrEnum):
    MODEL = "model"
    NONE = "none"
    HISTORY = "history"


@app.command("simulate")
def simulate_command(
    flow_spec: Annotated[str, typer.Argument(metavar="FLOW", help="Flow file or template id")],
    contacts: Annotated[Path | None, typer.Option(help="Contacts CSV/JSONL/Parquet")] = None,
    synthetic: Annotated[int | None, typer.Option(
        min=1, max=MAX_SYNTHETIC, help="N synthetic contacts")] = None,
    days: Annotated[float, typer.Option(min=0, max=MAX_DAYS, help="Virtual days to run")] = 14,
    seed: Annotated[int, typer.Option(
        min=0, max=2**32 - 1, help="Seed of the population and responses")] = 0,
    param: ParamOpt = None,
    responses: Annotated[Responses, typer.Option(
        help="model: simulated opens/clicks; none: pure flow logic; history: recorded events"
    )] = Responses.MODEL,
    events: Annotated[Path | None, typer.Option(help="Recorded events CSV/JSONL")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a flow on a virtual clock and print its funnel and messages per channel."""
    from mawb.engine.store import ENGAGEMENT_COLUMNS
    from mawb.intake import read_contacts, read_events
    from mawb.simulate import simulate

    if (contacts is None) == (synthetic is None):
        raise fail("give exactly one of --contacts CSV or --synthetic N")
    with expected_failures(flow_spec):
        flow = load_flow(flow_spec)
        params = parse_params(flow, param or [])
    if contacts is not None:
        with expected_failures(str(contacts)):
            population: Any = read_contacts(contacts)
    else:
        from mawb.data import synthetic_contacts

        population = synthetic_contacts(synthetic or 0, seed=seed)
    recorded = None
    if events is not None:
        with expected_failures(str(events)):
            recorded = read_events(events)
    with tempfile.TemporaryDirectory(prefix="mawb-sim-") as home, expected_failures(flow_spec):
        check_columns(flow, params, {*population.columns, *ENGAGEMENT_COLUMNS}, flow_spec)
        result = simulate(flow, population, days=days, params=params, seed=seed,
                          responses=responses.value, events=recorded, home=home,
                          progress=not as_json and sys.stderr.isatty())
        data = result.to_dict()
    if as_json:
        emit_json(data)
    else:
        _print_simulation(data)


def _print_simulation(data: dict[str, Any]) -> None:
    columns = ("entered", "completed", "waiting", "failed", "converted")
    width = max([len("node"), *(len(node_id) for node_id in data["funnel"])])
    typer.echo(f"{data['flow']} v{data['version']}  seed {data['seed']}  "
               f"{data['ticks']} ticks  params {json.dumps(data['params'])}")
    typer.echo(f"{'node':<{width}}  " + "  ".join(f"{c:>9}" for c in columns))
    for node_id, row in data["funnel"].items():
        typer.echo(f"{node_id:<{width}}  " + "  ".join(f"{row[c]:>9}" for c in columns))
    typer.echo("messages: " + ", ".join(f"{k} {v}" for k, v in data["messages"].items()))
    summary = data["summary"]
    typer.echo(", ".join(f"{key.replace('_', ' ')} {value}" for key, value in summary.items()))


def deploy_checked(workspace: Any, flow: Flow, source: str,
                   params: dict[str, Any] | None = None, partition: int | None = None) -> None:
    """Deploy after validating against the workspace's contact columns, so a condition on an
    attribute the contacts lack is a diagnostic naming its node, not a failed query.

    With `partition`, only that partition's store is touched (what one Airflow task may do)."""
    from mawb.engine.preflight import condition_diagnostics
    from mawb.engine.store import contact_column_names

    with workspace.connection(partition or 0, read_only=True) as connection:
        check_columns(flow, params, contact_column_names(connection), source)
        # Conditions DuckDB refuses for these columns' types: diagnostics, not failing ticks.
        typed = condition_diagnostics(connection, flow, params or {}, datetime.now(UTC))
    if typed:
        raise _Invalid(source, Report(tuple(typed)))
    workspace.deploy(flow, partitions=None if partition is None else [partition])


def check_columns(flow: Flow, params: dict[str, Any] | None, columns: Any, source: str) -> None:
    """Validate `flow` with `params` against the contact attributes it will run on."""
    merged = {**flow.params, **(params or {})}
    report = validate_flow(flow.model_copy(update={"params": merged}), columns=set(columns))
    if not report.valid:
        raise _Invalid(source, report)


def _deployed(spec: str, workspace: Any) -> Flow:
    """A flow file or template id, or the newest version of a flow deployed in `workspace`.

    Only a slug is looked up as a deployed id, so `../../elsewhere` never reads outside
    the workspace's `flows/` folder."""
    from mawb.validate import SLUG

    if not Path(spec).exists() and SLUG.match(spec) and workspace.versions(spec):
        return workspace.load_flow(spec)
    return load_flow(spec)


PartitionsOpt = Annotated[
    int | None, typer.Option(min=1, help="Contact partitions (default: as the workspace has)")
]


@app.command("run")
def run_command(
    flow_spec: Annotated[str, typer.Argument(
        metavar="FLOW", help="Flow file, template id or deployed flow id")],
    once: Annotated[bool, typer.Option("--once", help="Tick once and exit (the default)")] = False,
    every: Annotated[str | None, typer.Option(help="Tick on this interval: 30s, 5m, 1h")] = None,
    ticks: Annotated[int | None, typer.Option(min=1, help="Stop after this many ticks")] = None,
    home: HomeOpt = None,
    partitions: PartitionsOpt = None,
    param: ParamOpt = None,
) -> None:
    """Deploy a flow and advance it on the real clock, once or every interval (Ctrl-C stops)."""
    from mawb.engine.runner import parse_interval, run_on_clock, workspace_at

    if once and every:
        raise fail("use either --once or --every, not both")
    _refuse_while_serving(_home(home), "it ticks every live flow itself: deploy and set this "
                          f"one live with `mawb flows deploy {flow_spec} --live`")
    with expected_failures(flow_spec):
        workspace = workspace_at(_home(home), partitions)
        flow = _deployed(flow_spec, workspace)
        params = {**flow.params, **parse_params(flow, param or [])}
        interval = parse_interval(every) if every else None
        deploy_checked(workspace, flow, flow_spec, params)

        def report(now: datetime, count: int) -> None:
            typer.echo(f"{flow.id} v{flow.version}: tick {count} at {now.isoformat()}")

        try:
            run_on_clock(workspace, flow, every=interval, max_ticks=ticks, params=params,
                         on_tick=report)
        except KeyboardInterrupt:
            typer.echo("stopped (Ctrl-C); the interrupted tick, if any, was rolled back",
                       err=True)


@app.command("enroll")
def enroll_command(
    flow_spec: Annotated[str, typer.Argument(metavar="FLOW", help="Flow file or template id")],
    contacts: Annotated[Path, typer.Option(help="CSV/JSONL with a contact_id column")],
    node: Annotated[str | None, typer.Option(help="The manual_trigger node (if several)")] = None,
    home: HomeOpt = None,
    partitions: PartitionsOpt = None,
) -> None:
    """Queue contacts for a flow's manual trigger; they enter at the next tick.

    The file names contacts by contact_id; they must be in the workspace already
    (`mawb import-contacts`), so enrolling never overwrites their attributes.
    """
    from mawb.engine.runner import utc_now, workspace_at
    from mawb.intake import read_contacts

    with expected_failures(flow_spec):
        flow = load_flow(flow_spec)
        trigger = _manual_trigger(flow, node)
    with expected_failures(str(contacts)):
        frame = read_contacts(contacts)
        workspace = workspace_at(_home(home), partitions)
        _check_known(workspace, frame["contact_id"].tolist())
    if _route_to_service(workspace.home, [
            _command("deploy", flow=flow.to_dict()),
            _command("enroll", flow_id=flow.id, node_id=trigger,
                     contact_ids=frame["contact_id"].tolist())], flow_spec):
        return
    with expected_failures(flow_spec):
        deploy_checked(workspace, flow, flow_spec)
        workspace.request_enrollment(flow, trigger, frame["contact_id"].tolist(), utc_now())
    typer.echo(f"{flow.id}: queued {len(frame)} contacts at {trigger}; they enter at the next "
               f"tick (mawb run {flow_spec} --once)")


def _manual_trigger(flow: Flow, node_id: str | None) -> str:
    from mawb.flowplan import plan
    from mawb.nodes.base import TriggerKind

    manual = list(plan(flow).triggers_of(TriggerKind.MANUAL))
    if node_id is not None:
        if node_id not in manual:
            raise ValueError(f"--node {node_id}: not a manual_trigger node of {flow.id} "
                             f"(manual triggers: {', '.join(manual) or 'none'})")
        return node_id
    if len(manual) != 1:
        raise ValueError(f"flow {flow.id} has {len(manual)} manual_trigger nodes "
                         f"({', '.join(manual) or 'none'}); " +
                         ("name one with --node" if manual else "add one to enroll by hand"))
    return manual[0]


def _check_known(workspace: Any, contact_ids: list[str]) -> None:
    from mawb.intake import IntakeError, Problem

    known: set[str] = set()
    for partition in range(workspace.partitions):
        with workspace.connection(partition, read_only=True) as connection:
            known |= {row[0] for row in connection.execute(
                "SELECT contact_id FROM contacts WHERE contact_id IN (SELECT unnest(?))",
                [contact_ids]).fetchall()}
    unknown = [Problem(row, "contact_id", f"unknown contact {cid!r}; import it first "
                       "(mawb import-contacts)") for row, cid in enumerate(contact_ids, 1)
               if cid not in known]
    if unknown:
        raise IntakeError(unknown)


@app.command("status")
def status_command(
    flow_spec: Annotated[str, typer.Argument(metavar="FLOW",
                                             help="Deployed flow id, flow file or template id")],
    home: HomeOpt = None,
    partitions: PartitionsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Who is where: enrollments per status and contacts waiting at each node."""
    from mawb.engine.runner import status, workspace_at

    with expected_failures(flow_spec):
        workspace = workspace_at(_home(home), partitions)
        flow = _deployed(flow_spec, workspace)
        data = status(workspace, flow)
    if as_json:
        emit_json(data)
        return
    typer.echo(f"{flow.id}  versions {data['versions'] or 'not deployed'}  "
               f"last tick {data['last_tick'] or 'never'}")
    typer.echo("enrollments: " + ", ".join(f"{k} {v}" for k, v in data["enrollments"].items()))
    width = max(len(n["node_id"]) for n in data["nodes"])
    typer.echo(f"{'node':<{width}}  {'waiting':>8}  {'due':>6}  next wake")
    for row in data["nodes"]:
        typer.echo(f"{row['node_id']:<{width}}  {row['waiting']:>8}  {row['due']:>6}  "
                   f"{row['next_wake'] or '-'}")
    typer.echo("messages: " + ", ".join(f"{k} {v}" for k, v in data["messages"].items()))
    if data["outbox"]:
        typer.echo("outbox: " + ", ".join(f"{k} {v}" for k, v in data["outbox"].items()))
    if data.get("reasons"):
        typer.echo("not sent: " + ", ".join(f"{k} {v}" for k, v in data["reasons"].items()))
    for dead in data.get("dead_letters", [])[:5]:
        typer.echo(f"dead {dead['key']} after {dead['attempts']} attempts ({dead['reason']}): "
                   f"{dead['error']}")


DataFileArg = Annotated[Path, typer.Argument(metavar="FILE", help="CSV, JSONL or Parquet file")]


@app.command("ingest")
def ingest_command(file: DataFileArg, home: HomeOpt = None,
                   partitions: PartitionsOpt = None) -> None:
    """Load events into the workspace; a file with any bad row loads nothing."""
    from mawb.engine.runner import workspace_at

    if _serving(_home(home)):
        from mawb.intake import read_events

        with expected_failures(str(file)):
            rows = _json_rows(read_events(file))
        _route_to_service(_home(home), [_command("import", what="events", rows=rows,
                                                 source=file.name)], str(file))
        return
    with expected_failures(str(file)):
        counts = workspace_at(_home(home), partitions).load_events(file, source_name=file.name)
    typer.echo(f"{file}: {counts.new} new events ({counts.already} already loaded)")


@app.command("import-contacts")
def import_contacts_command(
    file: DataFileArg, home: HomeOpt = None, partitions: PartitionsOpt = None,
    consent: Annotated[str | None, typer.Option(
        help="The list was collected with consent for these channels: email,sms,push")] = None,
    types: Annotated[str | None, typer.Option(
        help="Types of your own columns, e.g. zip=text,visits=int (text, int, float, bool, "
        "date, timestamp, json); undeclared columns stay text unless every value is a number "
        "that reads back exactly")] = None,
) -> None:
    """Load (upsert by contact_id) contacts; a file with any bad row loads nothing.

    Existing contacts keep every column the file does not have (consent included)."""
    from mawb.engine.runner import workspace_at
    from mawb.engine.workspace import CONSENT_COLUMNS

    with expected_failures(str(file)):
        channels = _option_list("--consent", consent)
        declared = _option_pairs("--types", types)
        unknown = [channel for channel in channels if channel not in CONSENT_COLUMNS]
        if unknown:
            raise ValueError(f"--consent {unknown[0]}: use {', '.join(CONSENT_COLUMNS)}")

    if _serving(_home(home)):
        from mawb.intake import read_contacts

        with expected_failures(str(file)):
            frame = read_contacts(file, declared)
            given = [*frame.attrs.get("given", frame.columns)]
            for channel in channels:
                frame[f"{channel}_consent"] = True
                given.append(f"{channel}_consent")
            rows = _json_rows(frame[list(dict.fromkeys(given))])  # only what the file says
        _route_to_service(_home(home), [_command("import", what="contacts", rows=rows,
                                                 source=file.name)], str(file))
        return
    with expected_failures(str(file)):
        workspace = workspace_at(_home(home), partitions)
        result = workspace.load_contacts(file, consent=channels, types=declared)
    typer.echo(f"{file}: {result.count} contacts imported")
    for channel, without in result.without_consent.items():
        typer.secho(f"warning: no {channel}_consent column: {without} contacts have no {channel} "
                    f"consent; nothing will be sent to them by {channel} (if the list was "
                    f"collected with consent: --consent {channel})", fg=typer.colors.YELLOW,
                    err=True)


def _option_list(option: str, text: str | None) -> list[str]:
    """`a,b,c` as a list (empty items refused)."""
    if text is None:
        return []
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise ValueError(f"{option} {text!r}: expected a comma-separated list such as a,b")
    return items


def _option_pairs(option: str, text: str | None) -> dict[str, str]:
    """`name=value,...` as a dict (each item must have a name and a value)."""
    pairs: dict[str, str] = {}
    for item in _option_list(option, text):
        name, separator, value = (part.strip() for part in item.partition("="))
        if not separator or not name or not value:
            raise ValueError(f"{option} {item!r}: expected name=type, e.g. zip=text")
        pairs[name] = value
    return pairs


@app.command("demo")
def demo(
    home: HomeOpt = None,
    rebuild: Annotated[bool, typer.Option(help="Build it again even if it exists")] = False,
) -> None:
    """Create the demo workspace with a simulated history (a finished one is left as is).

    Demo contacts and events, every template deployed, and a few templates simulated over
    two virtual weeks so the Monitor page has funnels, messages and engagement to show.
    """
    import time

    from mawb.demo import build_demo

    started = time.perf_counter()
    home = _home(home)
    with expected_failures(str(home)):
        marker = build_demo(home, rebuild=rebuild,
                            progress=lambda text: typer.echo(f"demo: {text}", err=True))
    if marker is None:
        typer.echo(f"demo workspace already in {home} (--rebuild builds it again)")
        return
    typer.echo(f"demo workspace ready in {home} in {time.perf_counter() - started:.1f} s: "
               f"{marker['contacts']} contacts, {marker['events']} events, "
               f"{len(marker['deployed'])} flows deployed, {len(marker['simulated'])} "
               f"simulated for {marker['days']:g} days")


def _serving(home: Path) -> Any:
    """The service running for `home` (`service.json` and a live pid), or None."""
    from mawb.service.client import running

    return running(home)


def _refuse_while_serving(home: Path, why: str) -> None:
    running = _serving(home)
    if running is not None:
        raise fail(f"{running.describe()}; {why}")


def _command(name: str, **fields: Any) -> dict[str, Any]:
    from mawb.service.client import command

    return command(name, **fields)


def _json_rows(frame: Any) -> list[dict[str, Any]]:
    """Validated rows as JSON values (ISO times, null for missing) for a spool command."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def _route_to_service(home: Path, records: list[dict[str, Any]], source: str) -> bool:
    """While a service runs, send the write as commands and print their outcome (True);
    without one, return False and let the caller write the store itself."""
    from mawb.cli.flows import command_outcome
    from mawb.service.client import submit

    running = _serving(home)
    if running is None:
        return False
    with expected_failures(source):
        receipt = submit(home, records)
        typer.echo(command_outcome(home, running, receipt))
    return True


def _register_command_groups() -> None:
    """Commands that live in their own modules register themselves onto `app`.

    `mawb compile` lives with the compiler (its module never imports Airflow); the others live
    in `mawb/cli/<group>.py`, one module per group of commands, each with `register(app)`.
    """
    from mawb.compile.cli import register

    register(app)
    for module_name in COMMAND_MODULES:
        importlib.import_module(f"mawb.cli.{module_name}").register(app)


# One entry per module in this package that adds commands (e.g. "serve", "connections").
COMMAND_MODULES: tuple[str, ...] = ("connections", "keys", "serve", "flows", "workspace",
                                    "preview", "suppressions", "deliver")

_register_command_groups()


def main() -> None:  # pragma: no cover - console entry point
    app()
