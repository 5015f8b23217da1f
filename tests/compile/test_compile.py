"""The compiler's output without Airflow: formatting, lint, safety of user text, refusals."""

from __future__ import annotations

import ast
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path  # noqa: TC003 - pytest resolves fixture annotations

import pytest
from typer.testing import CliRunner

import mawb
from mawb import graph
from mawb.compile import CompileError, PodSettings, PodSettingsError, compile_airflow
from mawb.compile.airflow import ordering_edges
from mawb.compile.cli import register
from mawb.validate import FlowInvalidError

RUFF = [sys.executable, "-m", "ruff"]
HOSTILE = '"""; import os; os.system(\'x\') #'
HOSTILE_TEXTS = [
    HOSTILE,
    "line one\nline two\r\n\ttabbed {braces} {{ jinja }} {% raw %}",
    "Ünïcödé — 日本語 ✓ \u2028 \x00 \\ back\\slash",
    "'''; __import__('os').system('y') '''",
    "x" * 300 + " " + "long words " * 40,
]
# Names a compiled DAG may use; anything else in the AST would be code we did not mean to write.
ALLOWED_NAMES = {
    "DAG",
    "Param",
    "PARAMS",
    "PARAM_ARGUMENTS",
    "task",
    "get_current_context",
    "json",
    "subprocess",
    "timedelta",
    "Path",
    "pendulum",
    "str",
    "list",
    "range",
    "len",
    "isinstance",
    "dict",
    "FLOW_FILE",
    "FLOW_CONFIGMAP",
    "MAWB",
    "HOME",
    "PARTITIONS",
    "POOL",
    "pool",
    "NODES",
    "EDGES",
    "AFTER",
    "FIRST",
    "LAST",
    "TICK_TIME",
    "POD",
    "KubernetesPodOperator",
    "Secret",
    "k8s",
    "mawb_step",
    "task_group",
    "PARTITION",
    "step_task",
    "task_id",
    "target",
    "label",
    "context",
    "tick",
    "command",
    "name",
    "value",
    "shown",
    "named",
    "ingest",
    "dispatch",
    "drain",
    "result",
    "nodes",
    "node_id",
    "source",
    "arguments",
    "partition",
    "EVENTS",
    "Label",
    "branch",
    "Asset",
    "AssetOrTimeSchedule",
    "DeltaTriggerTimetable",
    "CronTriggerTimetable",
    "app",
    "failed",
    "RuntimeError",
    "__file__",
    "None",
    "int",
}


def _compile(flow: mawb.Flow, out: Path, **options: object) -> Path:
    return compile_airflow(flow, out, **options)  # type: ignore[arg-type]


def test_compile_time_per_template(tmp_path: Path, timings: dict[str, float]) -> None:
    for flow in mawb.list_templates():
        started = time.perf_counter()
        compile_airflow(flow, tmp_path, kubernetes=True, partitions=8)
        seconds = time.perf_counter() - started
        timings[f"compile_airflow {flow.id} (--kubernetes, 8 partitions)"] = seconds
        assert seconds < 1.0


def _hostile_flow(text: str) -> mawb.Flow:
    flow = mawb.load_template("lead_welcome_v1")
    flow.name = text
    flow.description = text
    for node in flow.nodes:
        node.label = text
    flow.metadata.category = text
    flow.params["note"] = text
    return flow


def _assert_formatted_and_lint_clean(path: Path, text: str, *selections: list[str]) -> None:
    """`text` (the file at `path`) is what ruff format would write and passes ruff check,
    with the project's rules and with each extra rule `selections` (e.g. AIR3)."""
    formatted = subprocess.run(
        [*RUFF, "format", "--stdin-filename", path.name, "-"],
        input=text, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert formatted.stdout == text
    for selection in (*selections, []):
        lint = subprocess.run(
            [*RUFF, "check", *selection, str(path)], capture_output=True, text=True, check=False
        )
        assert lint.returncode == 0, lint.stdout


def _assigned(tree: ast.Module, name: str) -> object:
    for statement in tree.body:
        if isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return ast.literal_eval(statement.value)  # type: ignore[arg-type]
    raise KeyError(name)


@pytest.mark.parametrize("kubernetes", [False, True], ids=["local", "kubernetes"])
@pytest.mark.parametrize("template_id", mawb.template_ids())
def test_every_template_compiles_formatted_and_lint_clean(
    template_id: str, kubernetes: bool, tmp_path: Path
) -> None:
    path = _compile(mawb.load_template(template_id), tmp_path, kubernetes=kubernetes, partitions=3)
    assert path.name == f"mawb_{template_id}.py"
    text = path.read_text(encoding="utf-8")
    _assert_formatted_and_lint_clean(path, text, ["--select", "AIR3"])
    header = ast.get_docstring(ast.parse(text)) or ""
    assert template_id in header and f"mawb {mawb.__version__}, do not edit" in header
    snapshot = path.with_suffix(".json")
    assert mawb.load(snapshot) == mawb.load_template(template_id)


@pytest.mark.parametrize(
    "options",
    [{}, {"executable": "/opt/mawb/bin/mawb"}, {"kubernetes": True}],
    ids=["in-process", "subprocess", "kubernetes"],
)
def test_dag_file_imports_only_airflow_sdk_and_the_standard_library(
    options: dict[str, object], tmp_path: Path
) -> None:
    kubernetes = bool(options.get("kubernetes"))
    for template_id in ("win_back_v1", "webinar_reminders_v1"):  # timer; webhook + Asset
        path = _compile(mawb.load_template(template_id), tmp_path / template_id, **options)
        modules = set()
        for statement in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(statement, ast.ImportFrom):
                modules.add(statement.module)
            elif isinstance(statement, ast.Import):
                modules.update(alias.name for alias in statement.names)
        airflow = {m for m in modules if m and m.startswith("airflow")}
        expected = {"airflow.sdk"} | (
            {
                "airflow.providers.cncf.kubernetes.operators.pod",
                "airflow.providers.cncf.kubernetes.secret",
            }
            if kubernetes
            else set()
        )
        assert airflow == expected
        others = {"datetime", "pendulum"} | (
            {"kubernetes.client"}
            if kubernetes
            else {"json", "pathlib", "subprocess"}
            if "executable" in options
            else {"json", "pathlib", "mawb.cli"}  # imported inside the task, at run time
        )
        assert modules - airflow == others


def test_graph_constants_follow_the_forward_edges(tmp_path: Path) -> None:
    flow = mawb.load_template("win_back_v1")  # has a loop back-edge
    loops = graph.back_edges(flow)
    assert loops
    tree = ast.parse(_compile(flow, tmp_path).read_text(encoding="utf-8"))
    labelled = [tuple(row) for row in _assigned(tree, "EDGES")]  # type: ignore[union-attr]
    assert labelled == [(e.source, e.target, e.branch) for e in graph.forward_edges(flow)]
    assert any(branch for _, _, branch in labelled)  # the loop's "body"/"done" and others
    assert not set(loops) & set(labelled)
    edges = [(source, target) for source, target, _ in labelled]
    assert list(_assigned(tree, "NODES")) == graph.topological_order(flow)  # type: ignore[arg-type]
    order = graph.topological_order(flow)
    after = [tuple(pair) for pair in _assigned(tree, "AFTER")]  # type: ignore[union-attr]
    assert after == ordering_edges(order, edges)  # type: ignore[arg-type]
    assert _assigned(tree, "FIRST") == [order[0]]  # the order is total: one first, one last
    assert _assigned(tree, "LAST") == [order[-1]]


@pytest.mark.parametrize("kubernetes", [False, True], ids=["local", "kubernetes"])
@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=range(len(HOSTILE_TEXTS)))
def test_user_text_only_appears_as_string_constants(
    text: str, kubernetes: bool, tmp_path: Path
) -> None:
    flow = _hostile_flow(text)
    assert flow.validate().valid
    path = _compile(flow, tmp_path, kubernetes=kubernetes)
    code = path.read_text(encoding="utf-8")
    tree = ast.parse(code)  # the file is valid Python whatever the text
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    names |= {node.arg for node in ast.walk(tree) if isinstance(node, ast.arg)}
    assert names <= ALLOWED_NAMES, names - ALLOWED_NAMES
    constants = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)]
    # the full text reaches the DAG only as whole string constants: display name, description,
    # labels and param default; the category tag is cut to Airflow's 100 characters
    assert constants.count(text) >= 2 + len(flow.nodes) + 1
    assert text[:100] in constants
    docstring = ast.get_docstring(tree, clean=False) or ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value == docstring:
                continue
            assert node.value in (text, text[:100]) or HOSTILE not in node.value
    _assert_formatted_and_lint_clean(path, code)


@pytest.mark.parametrize("template_id", mawb.template_ids())
def test_ordering_edges_leave_the_engine_order_as_the_only_order(template_id: str) -> None:
    flow = mawb.load_template(template_id)
    order = graph.topological_order(flow)
    forward = [(e.source, e.target) for e in graph.forward_edges(flow)]
    after = ordering_edges(order, forward)
    assert not set(after) & set(forward)
    # every consecutive pair of the engine order is now ordered, directly or through others
    downstream: dict[str, set[str]] = {node_id: set() for node_id in order}
    for node_id in reversed(order):
        for source, target in forward + after:
            if source == node_id:
                downstream[node_id] |= {target} | downstream[target]
    assert all(b in downstream[a] for a, b in itertools.pairwise(order))
    assert ordering_edges(["a", "b", "c"], [("a", "b"), ("b", "c")]) == []  # a chain
    assert ordering_edges(["t1", "t2", "x"], [("t1", "x"), ("t2", "x")]) == [("t1", "t2")]


def test_event_triggered_flows_also_run_on_their_asset(tmp_path: Path) -> None:
    timer = _compile(mawb.load_template("lead_welcome_v1"), tmp_path / "a").read_text()
    assert "Asset" not in timer
    assert "schedule=DeltaTriggerTimetable(timedelta(minutes=15))," in timer
    webhook = _compile(mawb.load_template("webinar_reminders_v1"), tmp_path / "b").read_text()
    assert "timetable=DeltaTriggerTimetable(timedelta(minutes=15))," in webhook
    assert 'uri="mawb://events/webinar_reminders_v1"' in webhook
    cron = _compile(
        mawb.load_template("customer_onboarding_v1"), tmp_path / "c", schedule="0 9 * * 1-5"
    ).read_text()
    assert 'CronTriggerTimetable("0 9 * * 1-5", timezone="UTC")' in cron
    once = _compile(
        mawb.load_template("customer_onboarding_v1"), tmp_path / "d", schedule="@once"
    ).read_text()
    assert "Asset" not in once and 'schedule="@once",' in once
    long_id = mawb.load_template("webinar_reminders_v1")
    long_id.id = "w" * 64
    path = _compile(long_id, tmp_path / "e")
    text = path.read_text()
    assert f"mawb://events/{'w' * 64}" in text
    _assert_formatted_and_lint_clean(path, text)


def test_schedule_defaults_to_the_tick_and_can_be_overridden(tmp_path: Path) -> None:
    flow = mawb.load_template("lead_welcome_v1")
    flow.settings.tick = "2h"
    assert (
        "schedule=DeltaTriggerTimetable(timedelta(hours=2)),"
        in _compile(flow, tmp_path / "a").read_text()
    )
    flow.settings.timezone = "Europe/Paris"
    cron = _compile(flow, tmp_path / "b", schedule="0 9 * * 1-5").read_text()
    assert 'schedule=CronTriggerTimetable("0 9 * * 1-5", timezone="Europe/Paris"),' in cron
    daily = _compile(flow, tmp_path / "c", schedule="@daily").read_text()
    assert 'schedule=CronTriggerTimetable("@daily", timezone="Europe/Paris"),' in daily
    with pytest.raises(CompileError, match="schedule"):
        compile_airflow(flow, tmp_path / "d", schedule="0 9 * * *; rm -rf /")


def test_params_become_typed_dag_params(tmp_path: Path) -> None:
    flow = mawb.load_template("lead_welcome_v1")
    flow.params.update({"max_score": 10, "enabled": True, "segment": 'it\'s "vip"'})
    flow.settings.goal = "score >= :max_score"
    tree = ast.parse(_compile(flow, tmp_path).read_text())
    params = {
        ast.literal_eval(key): call
        for key, call in zip(
            tree.body[_statement(tree, "PARAMS")].value.keys,  # type: ignore[attr-defined]
            tree.body[_statement(tree, "PARAMS")].value.values,  # type: ignore[attr-defined]
            strict=True,
        )
    }
    found = {
        name: (
            ast.literal_eval(call.args[0]),
            {k.arg: ast.literal_eval(k.value) for k in call.keywords},
        )
        for name, call in params.items()
    }
    assert found == {
        "engagement_threshold": (
            0.7,
            {"type": "number", "description": "Used by engaged.condition"},
        ),
        "max_score": (10, {"type": "integer", "description": "Used by the goal"}),
        "enabled": (True, {"type": "boolean", "description": _UNUSED}),
        "segment": ('it\'s "vip"', {"type": "string", "description": _UNUSED}),
    }


_UNUSED = "Not used by any condition of the flow"


def _statement(tree: ast.Module, name: str) -> int:
    for index, statement in enumerate(tree.body):
        if isinstance(statement, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in statement.targets
        ):
            return index
    raise KeyError(name)


def test_invalid_flow_is_refused_with_its_diagnostics(tmp_path: Path) -> None:
    flow = mawb.load_template("lead_welcome_v1")
    flow.connect("webinar", "ghost")
    with pytest.raises(FlowInvalidError) as raised:
        compile_airflow(flow, tmp_path)
    assert any(d.code == "missing_node" for d in raised.value.report.errors)
    assert not list(tmp_path.iterdir())


def test_options_that_cannot_work_are_refused(tmp_path: Path) -> None:
    flow = mawb.load_template("lead_welcome_v1")
    with pytest.raises(CompileError, match="partitions"):
        compile_airflow(flow, tmp_path, partitions=0)
    with pytest.raises(PodSettingsError, match="namespace"):
        compile_airflow(flow, tmp_path, kubernetes=True, namespace="Bad Namespace")
    with pytest.raises(PodSettingsError, match=r"limits\.memory"):
        compile_airflow(flow, tmp_path, kubernetes=True, pod=PodSettings(limits={"memory": "lots"}))
    reserved = mawb.Flow.new("reserved").add("dispatch", "manual_trigger")
    assert reserved.validate().valid
    with pytest.raises(CompileError, match="reserved"):
        compile_airflow(reserved, tmp_path)
    odd = mawb.load_template("lead_welcome_v1")
    odd.params["bad name"] = 1
    with pytest.raises(CompileError, match="bad name"):
        compile_airflow(odd, tmp_path)


def test_kubernetes_compile_writes_the_flow_configmap(tmp_path: Path) -> None:
    flow = mawb.load_template("lead_qualification_v1")
    compile_airflow(flow, tmp_path, kubernetes=True, namespace="marketing")
    manifest = json.loads((tmp_path / "mawb_lead_qualification_v1.configmap.json").read_text())
    assert manifest["metadata"]["namespace"] == "marketing"
    assert manifest["immutable"] is True
    assert mawb.loads(manifest["data"]["mawb_lead_qualification_v1.json"]) == flow


def _cli() -> CliRunner:
    import typer

    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:  # a second command keeps `compile` a named subcommand
        """Unused."""

    return app  # type: ignore[return-value]


def test_cli_compiles_a_valid_flow_and_refuses_an_invalid_one(tmp_path: Path) -> None:
    app = _cli()
    runner = CliRunner()
    good = mawb.load_template("lead_welcome_v1").save(tmp_path / "good.json")
    out = tmp_path / "dags"
    result = runner.invoke(
        app,
        [
            "compile",
            str(good),
            "--target",
            "airflow",
            "--out",
            str(out),
            "--kubernetes",
            "--partitions",
            "4",
            "--schedule",
            "@hourly",
            "--image",
            "registry.example/mawb:1.2",
            "--namespace",
            "mkt",
        ],
    )
    assert result.exit_code == 0, result.output
    text = (out / "mawb_lead_welcome_v1.py").read_text()
    assert "PARTITIONS = list(range(4))" in text and '"registry.example/mawb:1.2"' in text
    bad = tmp_path / "bad.json"
    document = json.loads(good.read_text())
    document["edges"].append({"source": "webinar", "target": "ghost"})
    bad.write_text(json.dumps(document))
    result = runner.invoke(app, ["compile", str(bad), "--out", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "missing_node" in result.output and "ghost" in result.output
    assert not (tmp_path / "none").exists()


def test_importing_mawb_and_compiling_never_imports_airflow(tmp_path: Path) -> None:
    script = (
        "import sys, mawb, mawb.compile\n"
        "from mawb.compile import compile_airflow\n"
        "compile_airflow(mawb.load_template('lead_welcome_v1'), "
        f"{str(tmp_path)!r}, kubernetes=True)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('airflow', 'kubernetes')], 'x'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


@pytest.mark.parametrize("kubernetes", [False, True], ids=["local", "kubernetes"])
def test_dag_files_hold_no_node_settings_and_no_secrets(kubernetes: bool, tmp_path: Path) -> None:
    """Node params (secret references, message texts, URLs) stay in the flow snapshot: the
    DAG file only names nodes, and the pods get credentials from a Secret by name."""
    flow = mawb.load_template("webinar_reminders_v1")
    trigger = next(node for node in flow.nodes if node.type == "webhook_trigger")
    trigger.params["secret"] = "env:MAWB_REGISTRATION_HOOK_SECRET"  # a reference, env:NAME
    assert flow.validate().valid
    email = next(node for node in flow.nodes if node.type == "email_send")
    email.params["subject"] = "Planted subject 7f3a"
    text = _compile(flow, tmp_path, kubernetes=kubernetes).read_text(encoding="utf-8")
    assert "env:" not in text and "MAWB_REGISTRATION_HOOK_SECRET" not in text
    assert "Planted subject 7f3a" not in text
    assert mawb.load(tmp_path / "mawb_webinar_reminders_v1.json") == flow  # they live here
    if kubernetes:
        assert 'Secret("env", None, "mawb-secrets")' in text  # by name only


def test_the_coarse_task_shape_runs_every_stage_in_one_task(tmp_path: Path) -> None:
    """--task-shape coarse (the default with --kubernetes): one `mawb step --node _tick` per
    partition instead of one task per node; every task has an execution timeout."""
    flow = mawb.load_template("lead_qualification_v1")
    coarse = compile_airflow(flow, tmp_path / "coarse", task_shape="coarse").read_text()
    assert 'step_task(partition, "tick", ["--node", "_tick"], "Tick: every stage")' in coarse
    assert "step_task(partition, node_id" not in coarse and "Label" not in coarse
    canvas = compile_airflow(flow, tmp_path / "canvas").read_text()
    assert "step_task(partition, node_id" in canvas and '"--node", "_drain"' in canvas
    pods = compile_airflow(flow, tmp_path / "pods", kubernetes=True).read_text()
    assert '"--node", "_tick"' in pods
    for text in (coarse, canvas, pods):
        assert '"execution_timeout": timedelta(minutes=30)' in text
    with pytest.raises(CompileError, match="task shape 'fine'"):
        compile_airflow(flow, tmp_path / "bad", task_shape="fine")
    saved = flow.save(tmp_path / "lead.json")
    result = CliRunner().invoke(_cli(), ["compile", str(saved), "--out", str(tmp_path / "cli"),
                                         "--task-shape", "coarse"])
    assert result.exit_code == 0, result.output
    assert '"_tick"' in (tmp_path / "cli" / "mawb_lead_qualification_v1.py").read_text()


def test_compile_writes_the_partition_pools_and_says_how_to_create_them(tmp_path: Path) -> None:
    """One single-slot pool per workspace partition, in `airflow pools import` format, named
    by the DAG's POOL template; the CLI prints the import command; bad prefixes are refused."""
    flow = mawb.load_template("lead_welcome_v1")
    path = compile_airflow(flow, tmp_path / "dags", partitions=3, pool_prefix="shop")
    pools = json.loads((tmp_path / "dags" / "shop_pools.json").read_text())
    assert pools == {f"shop_p{k}": {"slots": 1, "include_deferred": True, "description":
                                    f"mawb workspace partition {k}: one writing task at a time"}
                     for k in range(3)}
    assert _assigned(ast.parse(path.read_text()), "POOL") == "shop_p{}"
    for prefix in ("", "a b", "{x}", "-lead", "x" * 101):
        with pytest.raises(CompileError, match="pool prefix"):
            compile_airflow(flow, tmp_path / "bad", pool_prefix=prefix)
    saved = flow.save(tmp_path / "lead.json")
    out = tmp_path / "cli"
    result = CliRunner().invoke(_cli(), ["compile", str(saved), "--out", str(out),
                                         "--partitions", "2"])
    assert result.exit_code == 0, result.output
    assert f"airflow pools import {out / 'mawb_pools.json'}" in result.output
    assert set(json.loads((out / "mawb_pools.json").read_text())) == {"mawb_p0", "mawb_p1"}
