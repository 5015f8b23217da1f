"""Flow -> Apache Airflow 3 DAG source: the tick DAG (docs/architecture.md, section 3).

The compiler writes text; it never imports Airflow, so `import mawb` stays light. A flow
becomes one *tick DAG*: on the flow's tick schedule an `ingest` task loads the ingest spool,
then one task per flow node, then `dispatch` sends the outbox, then `drain` advances the
contacts still on older versions of the flow (each with its own params; nobody new enters
them), so one DAG per flow id keeps every live version moving. Task dependencies are the
flow's edges (loop back-edges dropped, as `mawb.graph` rules) plus *ordering edges* between
nodes the flow leaves unordered, so Airflow runs the nodes in exactly the engine's
topological order: a partition store has one writer at a time, and sibling nodes that touch
the same contact (two triggers, parallel branches) act in the same order as in the embedded
engine. Each contact partition has its own task group (a partition's tasks never wait for
another partition's) whose tasks run in the partition's single-slot pool (mawb.compile.pools),
and each task runs the one stable entry point `mawb step`, which is idempotent, so Airflow's
retries are safe. User text (names, labels,
descriptions) only ever enters the file through `mawb.compile.source`, as escaped string
literals.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mawb.compile import source
from mawb.compile.kubernetes import (
    FLOW_MOUNT,
    WORKSPACE_MOUNT,
    PodSettings,
    configmap_manifest,
    flow_configmap_name,
    flow_file_name,
)
from mawb.compile.params import params_block
from mawb.compile.pools import pool_template, pools_document, pools_file_name
from mawb.compile.schedule import (
    CompileError,
    asset_constant,
    dag_schedule,
    has_event_asset,
    schedule_expression,
)
from mawb.compile.tasks import param_arguments, step_kubernetes, step_local
from mawb.engine.deliver import uses_connections
from mawb.flowplan import checked_plan, plan

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mawb.model import Flow

# Task ids of the tick's own stages. Their `mawb step --node` names (_ingest, _dispatch,
# _drain, as mawb.engine names the stages) can never be node ids: slugs start with a-z0-9.
STAGES = ("ingest", "dispatch", "drain", "tick")
# canvas: one task per node (the graph view is the flow); coarse: one task per partition running
# every stage of the tick in one process (no per-task start-up per node; the default on
# Kubernetes, where each task is a pod).
TASK_SHAPES = ("canvas", "coarse")
# Every task writing partition k runs in the single-slot pool `<prefix>_p<k>`, one per
# workspace partition and shared by every flow's DAG (see mawb.compile.pools).
DEFAULT_POOL_PREFIX = "mawb"
_POOL_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_PARTITIONS = 1024
EXECUTION_TIMEOUT_MINUTES = 30
TAG_LENGTH = 100  # Airflow refuses longer DAG tags
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

__all__ = ["CompileError", "Target", "compile_airflow", "dag_source", "schedule_expression"]


@dataclass(frozen=True)
class Target:
    """Where and how the DAG runs: the options of `mawb compile`."""

    kubernetes: bool = False
    partitions: int = 1
    schedule: str | None = None
    home: str | None = None
    executable: str | None = None
    pod: PodSettings = field(default_factory=PodSettings)
    task_shape: str = "canvas"
    pool_prefix: str = DEFAULT_POOL_PREFIX


def compile_airflow(
    flow: Flow,
    out_dir: str | Path,
    *,
    kubernetes: bool = False,
    partitions: int = 1,
    schedule: str | None = None,
    image: str | None = None,
    namespace: str | None = None,
    home: str | None = None,
    pod: PodSettings | None = None,
    executable: str | None = None,
    task_shape: str | None = None,
    pool_prefix: str = DEFAULT_POOL_PREFIX,
) -> Path:
    """Write `<out_dir>/mawb_<flow id>.py` (+ the flow snapshot it runs) and return its path.

    Raises FlowInvalidError (with the validation report) for an invalid flow and
    CompileError for options that cannot work. `schedule` overrides the flow's tick: a tick
    like "1h", a cron expression or a preset such as "@daily". `home` is the workspace the
    steps use (Kubernetes default: the workspace volume). Local (non-Kubernetes) tasks run
    `mawb step` inside the task's own process, so mawb must be installed where the Airflow
    workers run; `executable` makes them start that command as a subprocess instead (a mawb
    installed in another environment). `task_shape` is "canvas" (one task per node, the
    default without Kubernetes) or "coarse" (one task per partition and tick running every
    stage, the default with Kubernetes). Every task of partition k runs in the single-slot
    pool `<pool_prefix>_p<k>`; the pools are written to `<out_dir>/<pool_prefix>_pools.json`
    for `airflow pools import` (one set per workspace, shared by its flows' DAGs).

    >>> import mawb, tempfile
    >>> compile_airflow(mawb.load_template("lead_welcome_v1"), tempfile.mkdtemp()).name
    'mawb_lead_welcome_v1.py'
    """
    checked_plan(flow)  # raises FlowInvalidError with the validation report
    settings = pod or PodSettings()
    overrides = {"image": image, "namespace": namespace}
    settings = PodSettings(**{**settings.__dict__, **{k: v for k, v in overrides.items() if v}})
    if kubernetes:
        settings.check()
        home = home or WORKSPACE_MOUNT
    shape = task_shape or ("coarse" if kubernetes else "canvas")
    target = Target(kubernetes, partitions, schedule, home, executable, settings, shape,
                    pool_prefix)
    text = dag_source(flow, target)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    flow_json = flow.to_json()
    _write(out / flow_file_name(flow), flow_json)
    _write(out / pools_file_name(pool_prefix), pools_document(pool_prefix, partitions))
    if kubernetes:
        manifest = configmap_manifest(flow, settings, flow_json)
        _write(out / f"mawb_{flow.id}.configmap.json", json.dumps(manifest, indent=2) + "\n")
    return _write(out / f"mawb_{flow.id}.py", text)


def _write(path: Path, text: str) -> Path:
    """Atomic write: the scheduler must never parse half a DAG file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def dag_source(flow: Flow, target: Target) -> str:
    """The DAG file's text for a validated flow."""
    _check(flow, target)
    planned = plan(flow)
    edges = [(edge.source, edge.target, edge.branch) for edge in planned.forward_edges]
    order = list(planned.order)
    schedule, sdk_names = dag_schedule(flow, target.schedule or flow.settings.tick)
    step = step_kubernetes(target) if target.kubernetes else step_local(target)
    body = [_constants(flow, target, order, edges), step, _dag(flow, schedule, target)]
    if target.task_shape == "canvas":
        sdk_names = {*sdk_names, "Label"}  # edge labels of the per-node graph
    imports = _imports(target, sdk_names)
    return f"{_header(flow, target)}\n\n{imports}\n\n" + "\n\n\n".join(body)


def ordering_edges(order: list[str], forward: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Edges that make Airflow follow `order` exactly: consecutive nodes not yet ordered.

    The flow's edges only order a node after its inputs; the engine runs the rest in
    `order` too, and in one partition two steps may never write at the same time.

    >>> ordering_edges(["a", "b", "c"], [("a", "c")])
    [('a', 'b'), ('b', 'c')]
    """
    downstream: dict[str, set[str]] = defaultdict(set)
    for node_id in reversed(order):  # reverse topological: successors are complete
        for source_id, target_id in forward:
            if source_id == node_id:
                downstream[node_id] |= {target_id} | downstream[target_id]
    return [(a, b) for a, b in itertools.pairwise(order) if b not in downstream[a]]


def _check(flow: Flow, target: Target) -> None:
    if target.task_shape not in TASK_SHAPES:
        raise CompileError(f"task shape {target.task_shape!r}: expected one of "
                           f"{', '.join(TASK_SHAPES)}")
    if not 1 <= target.partitions <= MAX_PARTITIONS:
        raise CompileError(f"partitions must be between 1 and {MAX_PARTITIONS}")
    if not _POOL_PREFIX.match(target.pool_prefix):
        raise CompileError(f"pool prefix {target.pool_prefix!r}: 1-100 letters, digits, "
                           "'_', '.' or '-', starting with a letter or digit")
    for name in flow.params:
        if not _PARAM_NAME.match(name):
            raise CompileError(f"param {name!r}: Airflow params need identifier names")
    for node in flow.nodes:
        if node.id in STAGES:
            raise CompileError(f"node {node.id!r}: the id is reserved for the tick's own task")
    if target.schedule is not None:
        schedule_expression(target.schedule)
    if target.executable is not None and (
        not target.executable or any(char.isspace() for char in target.executable)
    ):
        raise CompileError(f"executable {target.executable!r} must be one command word")


def _header(flow: Flow, target: Target) -> str:
    import mawb  # at call time: mawb may import this package while initialising

    mode = (
        "a Kubernetes pod"
        if target.kubernetes
        else "a subprocess"
        if target.executable
        else "the task's own process"
    )
    title = f'"""Airflow DAG of the mawb flow {flow.id}, version {flow.version}:'
    if len(title) > source.LINE_LENGTH:  # ids have up to 64 characters
        title = f'"""Airflow DAG of the mawb flow\n{flow.id}, version {flow.version}:'
    return "\n".join(
        [
            title,
            f'"{source.docstring_text(flow.name or flow.id)}".',
            "",
            f"Generated by mawb {mawb.__version__}, do not edit: "
            "change the flow and compile again.",
            "A tick DAG: `ingest` loads the event spool, each flow node is one task (run in the",
            "engine's order), `dispatch` sends the outbox, `drain` moves contacts still on",
            "older versions. Every task runs `mawb step` in",
            f"{mode} once per contact partition; the step is idempotent, so retries are safe.",
            '"""',
        ]
    )


def _imports(target: Target, sdk_names: set[str]) -> str:
    sdk = ", ".join(sorted({"DAG", "Param", *sdk_names}, key=_import_order))
    if target.kubernetes:
        return "\n".join(
            [
                "from datetime import timedelta",
                "",
                "import pendulum",
                # The one import outside airflow.sdk: the SDK has no Kubernetes operator.
                "from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator",
                "from airflow.providers.cncf.kubernetes.secret import Secret",
                _import_line("airflow.sdk", f"{sdk}, task_group"),
                "from kubernetes.client import models as k8s",
            ]
        )
    standard = ["import subprocess"] if target.executable else []
    local = f"{sdk}, get_current_context, task, task_group"
    return "\n".join(
        [
            "import json",
            *standard,
            "from datetime import timedelta",
            "from pathlib import Path",
            "",
            "import pendulum",
            _import_line("airflow.sdk", local),
        ]
    )


def _import_order(name: str) -> tuple[int, str]:
    """isort's order inside one `from` import: CONSTANTS, Classes, functions."""
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def _import_line(module: str, names: str) -> str:
    line = f"from {module} import {names}"
    if len(line) <= source.LINE_LENGTH:
        return line
    body = "".join(f"    {name},\n" for name in names.split(", "))
    return f"from {module} import (\n{body})"


def _constants(
    flow: Flow, target: Target, order: list[str], edges: list[tuple[str, str, str | None]]
) -> str:
    labels = {node.id: node.label or node.id for node in flow.nodes}
    forward = [(source_id, target_id) for source_id, target_id, _ in edges]
    after = ordering_edges(order, forward)
    has_input = {t for _, t in forward + after}
    has_output = {s for s, _ in forward + after}
    lines = []
    if target.kubernetes:
        flow_path = f"{FLOW_MOUNT}/{flow_file_name(flow)}"
        lines.append(f"FLOW_FILE = {source.string(flow_path)}")
        lines.append(f"FLOW_CONFIGMAP = {source.string(flow_configmap_name(flow))}")
    else:
        lines.append('FLOW_FILE = str(Path(__file__).with_suffix(".json"))  # the flow snapshot')
        if target.executable:
            lines.append(f"MAWB = {source.string(target.executable)}")
    lines.append(f"HOME = {source.literal(target.home)}")
    lines.append(f"PARTITIONS = list(range({target.partitions}))")
    lines.append("# Partition k's tasks run in the single-slot pool POOL.format(k), one per")
    lines.append("# partition of the workspace (create them once with `airflow pools import`, see")
    lines.append("# the pools file mawb compile wrote): one task at a time writes a partition.")
    lines.append(f"POOL = {source.string(pool_template(target.pool_prefix))}")
    lines.append(params_block(flow))
    if target.kubernetes:
        lines.append(param_arguments(flow))
    lines.append("")
    lines.append("# Flow nodes in topological order, with their canvas labels.")
    lines.append(_dict_block("NODES", {node_id: labels[node_id] for node_id in order}))
    lines.append("")
    lines.append("# The flow's edges without loop back-edges (those are taken in the next tick),")
    lines.append("# with the branch they leave by: the graph view labels them like the canvas.")
    lines.append(_tuples_block("EDGES", edges))
    lines.append("")
    lines.append("# Nodes the flow leaves unordered run one after another, in the engine's order:")
    lines.append("# one writer per partition store, and the same result as the embedded engine.")
    lines.append(_tuples_block("AFTER", after))
    lines.append(_list_line("FIRST", [n for n in order if n not in has_input]))
    lines.append(_list_line("LAST", [n for n in order if n not in has_output]))
    if has_event_asset(flow, target.schedule or flow.settings.tick):
        lines.append("")
        lines.append(asset_constant(flow))
    return "\n".join(lines)


def _dict_block(name: str, items: dict[str, str]) -> str:
    if not items:
        return f"{name} = {{}}"
    lines = [f"{name} = {{"]
    for key, value in items.items():
        start = f"    {source.string(key)}: "
        lines.append(f"{start}{source.long_string(value, len(start), 1)},")
    lines.append("}")
    return "\n".join(lines)


def _tuples_block(name: str, rows: Sequence[tuple[str | None, ...]]) -> str:
    """A list of tuples of slugs (ids, branch names: at most 64 characters) or None."""
    if not rows:
        return f"{name} = []"
    lines = [f"{name} = ["]
    for row in rows:
        items = [source.literal(item) for item in row]
        line = f"    ({', '.join(items)}),"
        if len(line) > source.LINE_LENGTH:
            inner = "".join(f"        {item},\n" for item in items)
            line = f"    (\n{inner}    ),"
        lines.append(line)
    lines.append("]")
    return "\n".join(lines)


def _list_line(name: str, items: list[str]) -> str:
    line = f"{name} = [{', '.join(source.string(item) for item in items)}]"
    if len(line) <= source.LINE_LENGTH:
        return line
    body = "".join(f"    {source.string(item)},\n" for item in items)
    return f"{name} = [\n{body}]"


def _default_args() -> str:
    return "\n".join(
        [
            "    default_args={",
            '        "retries": 3,',
            '        "retry_delay": timedelta(seconds=30),',
            '        "retry_exponential_backoff": 2.0,',
            '        "max_retry_delay": timedelta(minutes=10),',
            "        # A hung task fails (and is retried) instead of holding its partition.",
            f'        "execution_timeout": timedelta(minutes={EXECUTION_TIMEOUT_MINUTES}),',
            "    },",
        ]
    )


def _tags_line(tags: list[str]) -> str:
    line = f"    tags=[{', '.join(source.string(tag) for tag in tags)}],"
    if len(line) <= source.LINE_LENGTH:
        return line
    items = "".join(f"        {source.long_string(tag, 8, 2)},\n" for tag in tags)
    return f"    tags=[\n{items}    ],"


def _dag(flow: Flow, schedule: str, target: Target) -> str:
    delivers = uses_connections(flow)
    tags = ["mawb", flow.metadata.category[:TAG_LENGTH]]
    timezone = source.string(flow.settings.timezone)
    lines = [
        "with DAG(",
        f"    dag_id={source.string('mawb_' + flow.id)},",
        f"    dag_display_name={source.long_string(flow.name or flow.id, 21, 1)},",
    ]
    if flow.description:
        lines.append(f"    description={source.long_string(flow.description, 16, 1)},")
    lines += [
        f"    schedule={schedule},",
        f"    start_date=pendulum.datetime(2025, 1, 1, tz={timezone}),",
        "    catchup=False,",
        "    max_active_runs=1,",
        _tags_line(tags),
        "    params=PARAMS,",
        _default_args(),
        "):",
        "",
        "    @task_group",
        "    def tick(partition: int) -> None:",
        '        """One partition\'s tick: its tasks write only that partition\'s store."""',
        *(_coarse_group(delivers) if target.task_shape == "coarse" else _canvas_group()),
        *(_deliver_lines(target.task_shape) if delivers else []),
        "",
        "    # One task group per partition (not a mapped group: Airflow gives every instance of a",
        "    # mapped task the same pool, and each partition needs its own).",
        "    for partition in PARTITIONS:",
        '        tick.override(group_id=f"p{partition}")(partition)',
    ]
    return "\n".join(lines) + "\n"


def _coarse_group(delivers: bool) -> list[str]:
    task = 'step_task(partition, "tick", ["--node", "_tick"], "Tick: every stage")'
    return [f"        ticked = {task}" if delivers else f"        {task}"]


def _deliver_lines(task_shape: str) -> list[str]:
    """A last task sending what the tick queued for connected channels (store closed meanwhile);
    without one the tick's task stands alone."""
    last = "ticked" if task_shape == "coarse" else "drain"
    return ['        deliver = step_task(partition, "deliver", ["--node", "_deliver"], '
            '"Deliver messages")', f"        {last} >> deliver"]


def _canvas_group() -> list[str]:
    return [
        '        ingest = step_task(partition, "ingest", ["--node", "_ingest"], '
        '"Load ingest spool")',
        '        dispatch = step_task(partition, "dispatch", ["--node", "_dispatch"], '
        '"Dispatch outbox")',
        '        drain = step_task(partition, "drain", ["--node", "_drain"], "Older versions")',
        "        nodes = {",
        '            node_id: step_task(partition, node_id, ["--node", node_id], label)',
        "            for node_id, label in NODES.items()",
        "        }",
        "        ingest >> [nodes[node_id] for node_id in FIRST]",
        "        for source, target, branch in EDGES:",
        "            if branch:",
        "                nodes[source] >> Label(branch) >> nodes[target]",
        "            else:",
        "                nodes[source] >> nodes[target]",
        "        for source, target in AFTER:",
        '            nodes[source] >> Label("then") >> nodes[target]',
        "        [nodes[node_id] for node_id in LAST] >> dispatch",
        "        dispatch >> drain  # contacts on older versions, after the newest version",
    ]
