"""Compiled DAGs in a real Airflow 3: DagBag import, task graph, dag.test(), pod specs.

Airflow is slow to import and to migrate, so these tests share one migrated SQLite
database per session (see conftest.py) and are marked `airflow` and `slow`.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow_parity import PARITY_TICK, demo_workspace, same_stores, store_rows

import mawb
import mawb.engine
from mawb import graph
from mawb.compile import PodSettings, compile_airflow
from mawb.compile.airflow import ordering_edges
from mawb.compile.schedule import asset_names
from mawb.nodes.base import TriggerKind

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
TICK = pendulum.datetime(2025, 3, 3, 9, 0, tz="UTC")
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _dagbag(folder: Path, timings: dict[str, float], what: str = "DAG") -> Any:
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(folder))
    files = len(list(folder.glob("*.py")))
    timings.setdefault(
        f"DagBag parse per {what} file (mean of {files})", (time.perf_counter() - started) / files
    )
    return bag


def _expected_graph(flow: mawb.Flow, partitions: int) -> dict[str, set[str]]:
    """Downstream task ids per task: the forward flow graph, the ordering edges that make the
    engine's order the only one, ingest before / dispatch after everything, then drain; once
    per partition, in the partition's group `p<k>`."""
    downstream: dict[str, set[str]] = {node.id: set() for node in flow.nodes}
    forward = [(edge.source, edge.target) for edge in graph.forward_edges(flow)]
    order = graph.topological_order(flow)
    for source, target in forward + ordering_edges(order, forward):
        downstream[source].add(target)
    downstream["ingest"] = {order[0]}
    for node_id, targets in list(downstream.items()):
        if not targets and node_id != "ingest":
            targets.add("dispatch")
    downstream["dispatch"] = {"drain"}
    downstream["drain"] = set()
    return {f"p{k}.{task}": {f"p{k}.{t}" for t in targets}
            for k in range(partitions) for task, targets in downstream.items()}


@pytest.mark.parametrize("kubernetes", [False, True], ids=["local", "kubernetes"])
def test_every_template_imports_in_a_dagbag_with_the_flow_graph(
    airflow_db: Path, kubernetes: bool, tmp_path: Path, timings: dict[str, float]
) -> None:
    flows = mawb.list_templates()
    for flow in flows:  # the canvas shape: its task graph is the flow's (coarse is tested below)
        compile_airflow(flow, tmp_path, kubernetes=kubernetes, partitions=2, task_shape="canvas")
    variant = "kubernetes" if kubernetes else "local"
    bag = _dagbag(tmp_path, timings, f"{variant} (cold: first imports)")
    _dagbag(tmp_path, timings, f"{variant} (warm)")
    assert bag.import_errors == {}
    assert set(bag.dags) == {f"mawb_{flow.id}" for flow in flows}
    for flow in flows:
        dag = bag.dags[f"mawb_{flow.id}"]
        actual = {task.task_id: set(task.downstream_task_ids) for task in dag.tasks}
        assert actual == _expected_graph(flow, 2), flow.id
        _assert_edge_labels(dag, flow)
        assert dag.max_active_runs == 1 and dag.catchup is False
        assert set(dag.params.keys()) == set(flow.params)
        for name, value in flow.params.items():
            param = dag.params.get_param(name)
            assert param.value == value and param.schema["type"] == JSON_TYPES[type(value)]
            assert param.description.startswith(("Used by", "Not used"))
        assert dag.tags >= {"mawb", flow.metadata.category}
        task = dag.get_task("p0.ingest")
        assert task.retries == 3 and task.retry_exponential_backoff == 2.0
        # one task group per partition, and each partition's tasks in its own single-slot pool
        for task in dag.tasks:
            group = task.task_group.group_id
            assert task.task_id.startswith(f"{group}.") and group in ("p0", "p1")
            assert (task.pool, task.pool_slots) == (f"mawb_{group}", 1), task.task_id
        _assert_schedule(dag, flow)


def test_missing_partition_pools_are_a_dag_warning_not_a_silent_run(
    airflow_db: Path, tmp_path: Path
) -> None:
    """Airflow runs no task whose pool is missing and warns about the DAG; the pools file
    `mawb compile` writes holds exactly the pools the DAG's tasks use."""
    import json

    from airflow.dag_processing.dagbag import DagBag

    flow = mawb.load_template("lead_welcome_v1")
    compile_airflow(flow, tmp_path, partitions=2, kubernetes=True, pool_prefix="shop")
    pools = set(json.loads((tmp_path / "shop_pools.json").read_text()))
    assert pools == {"shop_p0", "shop_p1"}
    missing = DagBag(dag_folder=str(tmp_path), known_pools={"default_pool"})
    dag = missing.dags["mawb_lead_welcome_v1"]
    assert {task.task_id: task.pool for task in dag.tasks} == {
        "p0.tick": "shop_p0", "p1.tick": "shop_p1"}
    [warning] = missing.dag_warnings
    assert warning.warning_type == "non-existent pool"
    assert "shop_p0" in warning.message and "shop_p1" in warning.message
    created = DagBag(dag_folder=str(tmp_path), known_pools={"default_pool", *pools})
    assert created.dag_warnings == set()


def _assert_edge_labels(dag: Any, flow: mawb.Flow) -> None:
    """Flow edges carry their branch name, like the canvas; ordering edges say "then"."""
    forward = graph.forward_edges(flow)
    pairs = [(edge.source, edge.target) for edge in forward]
    for edge in forward:
        labels = {e.branch for e in forward if (e.source, e.target) == (edge.source, edge.target)}
        if len(labels) == 1:  # two branches into one node share one Airflow edge
            info = dag.get_edge_info(f"p0.{edge.source}", f"p0.{edge.target}")
            assert info.get("label") == edge.branch
    for source, target in ordering_edges(graph.topological_order(flow), pairs):
        assert dag.get_edge_info(f"p1.{source}", f"p1.{target}") == {"label": "then"}


def _assert_schedule(dag: Any, flow: mawb.Flow) -> None:
    """Every 15 minutes; flows with event/webhook triggers also on their event Asset."""
    from airflow.sdk import Asset, AssetOrTimeSchedule, DeltaTriggerTimetable

    timetable = dag.timetable
    kinds = {mawb.nodes.get(node.type).trigger_kind for node in flow.nodes}
    if kinds & {TriggerKind.EVENT, TriggerKind.WEBHOOK}:
        assert isinstance(timetable, AssetOrTimeSchedule), flow.id
        name, uri = asset_names(flow)
        assert timetable.asset_condition == Asset(name=name, uri=uri)
        timetable = timetable.timetable
    else:
        assert not dag.timetable.asset_condition, flow.id
    assert isinstance(timetable, DeltaTriggerTimetable)
    assert timetable.delta == timedelta(minutes=15)


def test_dag_test_runs_every_step_once_per_partition_in_flow_order(
    dags_folder: Path, recording_mawb: tuple[Path, Path], timings: dict[str, float]
) -> None:
    executable, log = recording_mawb
    flow = mawb.load_template("lead_qualification_v1")  # fan-in of triggers, fan-out to sales
    compile_airflow(flow, dags_folder, partitions=2, executable=str(executable), home="/srv/mawb")
    dag = _dagbag(dags_folder, timings).dags["mawb_lead_qualification_v1"]
    started = time.perf_counter()
    run = dag.test(logical_date=TICK)
    timings["dag.test (12 tasks x 2 partitions)"] = time.perf_counter() - started
    assert run.state == "success"
    assert {ti.state for ti in run.get_task_instances()} == {"success"}

    calls = [line.split() for line in log.read_text().splitlines()]
    assert len(calls) == (len(flow.nodes) + 3) * 2
    flow_file = str(dags_folder / "mawb_lead_qualification_v1.json")
    ran: list[tuple[str, str]] = []
    for argv in calls:
        assert argv[:3] == ["step", "--flow", flow_file]
        options = dict(zip(argv[3::2], argv[4::2], strict=False))
        assert options["--partitions"] == "2" and options["--home"] == "/srv/mawb"
        assert pendulum.parse(options["--tick-time"]) == TICK
        params = [argv[i + 1] for i, word in enumerate(argv) if word == "--param"]
        assert params == ["score_threshold=50", "score_per_action=10"]
        step = options["--node"].removeprefix("_")  # _ingest runs as task ingest, etc.
        ran.append((step, options["--partition"]))
    steps = ["ingest", "dispatch", "drain", *(n.id for n in flow.nodes)]
    assert sorted(ran) == sorted((step, str(p)) for step in steps for p in (0, 1))
    for partition in ("0", "1"):  # each partition's group runs in the engine's order
        mine = [step for step, p in ran if p == partition]
        assert mine == ["ingest", *graph.topological_order(flow), "dispatch", "drain"]


def _has_step_command() -> bool:
    from mawb.cli import app

    return any(command.name == "step" for command in app.registered_commands)


@pytest.mark.skipif(not _has_step_command(), reason="needs the `mawb step` command")
@pytest.mark.parametrize(
    ("template_id", "partitions"),
    [("lead_welcome_v1", 1), ("lead_qualification_v1", 2)],  # linear; branches + fan-out
)
def test_dag_test_store_equals_the_embedded_engine(
    template_id: str,
    partitions: int,
    dags_folder: Path,
    tmp_path: Path,
    timings: dict[str, float],
) -> None:
    flow = mawb.load_template(template_id)
    airflow = demo_workspace(tmp_path / "airflow", flow, partitions)
    embedded = demo_workspace(tmp_path / "embedded", flow, partitions)
    assert store_rows(airflow) == store_rows(embedded)  # same input
    compile_airflow(flow, dags_folder, partitions=partitions, home=str(airflow.home))
    dag = _dagbag(dags_folder, timings).dags[f"mawb_{template_id}"]
    started = time.perf_counter()
    assert dag.test(logical_date=PARITY_TICK).state == "success"
    tasks = (len(flow.nodes) + 3) * partitions  # + ingest, dispatch, drain
    timings[f"dag.test parity {template_id} ({tasks} task instances)"] = (
        time.perf_counter() - started
    )
    embedded.tick(flow, now=PARITY_TICK)
    same_stores(airflow, embedded)
    airflow_rows = store_rows(airflow)
    # the tick did something worth comparing: contacts entered and messages were sent
    assert all(airflow_rows[f"{p}/enrollments"] for p in range(partitions))
    assert any(airflow_rows[f"{p}/messages"] for p in range(partitions))


def _gated(version: int, t: float) -> mawb.Flow:
    """manual trigger -> 1-day wait -> `score > :t` -> data_update per branch."""
    flow = (mawb.Flow.new("gate").add("start", "manual_trigger")
            .add("wait", "delay_action", days=1)
            .add("check", "if_condition", condition="score > :t")
            .add("hi", "data_update", set={"went": "true"})
            .add("lo", "data_update", set={"went": "false"})
            .connect("start", "wait").connect("wait", "check")
            .connect("check", "hi", "true").connect("check", "lo", "false"))
    return flow.model_copy(update={"version": version, "params": {"t": t}})


@pytest.mark.skipif(not _has_step_command(), reason="needs the `mawb step` command")
def test_dag_test_two_versions_with_a_mid_flight_publish_equals_the_embedded_engine(
    dags_folder: Path, tmp_path: Path, timings: dict[str, float]
) -> None:
    """v1 (t = 100) enrolls contacts; v2 (t = 0) is published while they wait; the DAG of
    v2 (same dag id) must finish them on v1 with v1's params, as the embedded engine does,
    and enroll a new contact into v2 only."""
    import pandas as pd

    later = PARITY_TICK + timedelta(days=2)
    contacts = pd.DataFrame({"contact_id": [f"c{i}" for i in range(6)],
                             "email": [f"c{i}@example.com" for i in range(6)],
                             "score": [50, 150, 50, 150, 50, 150]})
    stores = {}
    for name in ("airflow", "embedded"):
        workspace = mawb.engine.Workspace(tmp_path / name, 2)
        workspace.import_contacts(contacts)
        workspace.deploy(_gated(1, 100))
        workspace.request_enrollment(_gated(1, 100), "start", ["c0", "c1", "c2", "c3"],
                                     PARITY_TICK)
        stores[name] = workspace
    airflow, embedded = stores["airflow"], stores["embedded"]
    started = time.perf_counter()
    for version, t, tick in ((1, 100, PARITY_TICK), (2, 0, later)):
        flow = _gated(version, t)
        if version == 2:  # published mid-flight; one more contact asks to enter
            for workspace in (airflow, embedded):
                workspace.deploy(flow)
                workspace.request_enrollment(flow, "start", ["c4"], later)
        compile_airflow(flow, dags_folder, partitions=2, home=str(airflow.home))
        dag = _dagbag(dags_folder, timings, "two-version").dags["mawb_gate"]
        assert dag.test(logical_date=tick).state == "success"
        embedded.tick(flow, now=tick)
        same_stores(airflow, embedded)
    timings["dag.test two versions (2 runs x 2 partitions)"] = time.perf_counter() - started
    went: dict[str, tuple[str | None, int]] = {}
    for partition in range(2):
        with airflow.connection(partition, read_only=True) as connection:
            for contact_id, result, version in connection.execute(
                "SELECT c.contact_id, c.went, e.version FROM contacts c "
                "JOIN enrollments e USING (contact_id)"
            ).fetchall():
                went[contact_id] = (result, version)
    # v1's contacts were routed with v1's t = 100; c4 entered v2 and waits there
    assert went == {"c0": ("false", 1), "c1": ("true", 1), "c2": ("false", 1),
                    "c3": ("true", 1), "c4": (None, 2)}


@pytest.mark.skipif(not _has_step_command(), reason="needs the `mawb step` command")
def test_dag_test_coarse_shape_equals_the_embedded_engine_and_pushes_row_counts(
    dags_folder: Path, tmp_path: Path, timings: dict[str, float]
) -> None:
    """One task per partition (`mawb step --node _tick`) ends in exactly the embedded
    engine's store, and its XCom holds the rows the tick wrote per node and event."""
    flow = mawb.load_template("lead_qualification_v1")
    airflow = demo_workspace(tmp_path / "airflow", flow, 2)
    embedded = demo_workspace(tmp_path / "embedded", flow, 2)
    compile_airflow(flow, dags_folder, partitions=2, home=str(airflow.home), task_shape="coarse")
    dag = _dagbag(dags_folder, timings, "coarse").dags["mawb_lead_qualification_v1"]
    assert [task.task_id for task in dag.tasks] == ["p0.tick", "p1.tick"]
    started = time.perf_counter()
    run = dag.test(logical_date=PARITY_TICK)
    timings["dag.test coarse (1 task x 2 partitions)"] = time.perf_counter() - started
    assert run.state == "success"
    embedded.tick(flow, now=PARITY_TICK)
    assert store_rows(airflow) == store_rows(embedded)  # runs included: the same stages ran
    from mawb.engine.workspace import tick_counts

    for ti in run.get_task_instances():
        partition = int(ti.task_id.removeprefix("p").removesuffix(".tick"))
        pushed = ti.xcom_pull(task_ids=ti.task_id)
        with airflow.connection(partition, read_only=True) as connection:
            expected = tick_counts(connection, flow, PARITY_TICK.naive())
        assert pushed == expected and expected, ti.task_id


def _pod(dag: Any, task_id: str, partition: int) -> dict[str, Any]:
    """The pod Airflow would create for one task of one partition's group, without a cluster."""
    from types import SimpleNamespace

    from kubernetes.client import ApiClient

    operator = dag.get_task(f"p{partition}.{task_id}")
    assert operator.pool == f"mawb_p{partition}"  # the partition's single-slot pool
    context = {
        "logical_date": None,  # as in an Asset-triggered run: the tick is the run's time
        "dag_run": SimpleNamespace(run_after=TICK),
        "ti": SimpleNamespace(map_index=-1),
        "params": {name: param.value for name, param in dag.params.items()},
    }
    operator.render_template_fields(context)
    pod = operator.build_pod_request_obj(dry_run=True)
    return ApiClient().sanitize_for_serialization(pod)


def test_kubernetes_pods_render_and_validate_offline(airflow_db: Path, tmp_path: Path) -> None:
    import kubernetes_validate

    flow = mawb.load_template("lead_qualification_v1")
    settings = PodSettings(
        image="registry.example/mawb:1.2.3",
        namespace="marketing",
        node_selector={"workload": "mawb"},
        limits={"cpu": "2", "memory": "4Gi"},
    )
    compile_airflow(flow, tmp_path / "coarse", kubernetes=True, partitions=3, pod=settings)
    compile_airflow(flow, tmp_path / "canvas", kubernetes=True, partitions=3, pod=settings,
                    task_shape="canvas")
    from airflow.dag_processing.dagbag import DagBag

    coarse = DagBag(dag_folder=str(tmp_path / "coarse")).dags["mawb_lead_qualification_v1"]
    # the default with --kubernetes
    assert [task.task_id for task in coarse.tasks] == ["p0.tick", "p1.tick", "p2.tick"]
    tick = _pod(coarse, "tick", 1)["spec"]["containers"][0]["args"]
    assert tick[3:5] == ["--node", "_tick"]
    assert tick[-2:] == ["--xcom-file", "/airflow/xcom/return.json"]
    dag = DagBag(dag_folder=str(tmp_path / "canvas")).dags["mawb_lead_qualification_v1"]
    version = kubernetes_validate.utils.latest_version()
    for task_id, partition in [("ingest", 0), ("qualified", 2), ("dispatch", 1)]:
        pod = _pod(dag, task_id, partition)
        kubernetes_validate.validate(pod, version, strict=True)
        spec = pod["spec"]
        container = spec["containers"][0]
        assert pod["metadata"]["namespace"] == "marketing"
        assert container["image"] == "registry.example/mawb:1.2.3"
        assert container["command"] == ["mawb"]
        args = container["args"]
        node = task_id if task_id not in ("ingest", "dispatch") else f"_{task_id}"
        flow_file = "/etc/mawb/flows/mawb_lead_qualification_v1.json"
        assert args[:5] == ["step", "--flow", flow_file, "--node", node]
        options = dict(zip(args[5::2], args[6::2], strict=False))
        assert options["--partition"] == str(partition) and options["--partitions"] == "3"
        assert pendulum.parse(options["--tick-time"]) == TICK
        assert options["--home"] == "/var/lib/mawb"
        assert [args[i + 1] for i, a in enumerate(args) if a == "--param"] == [
            "score_threshold=50",
            "score_per_action=10",
        ]
        assert container["resources"] == {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "2", "memory": "4Gi"},
        }
        assert {"name": "MAWB_HOME", "value": "/var/lib/mawb"} in container["env"]
        assert container["envFrom"] == [{"secretRef": {"name": "mawb-secrets"}}]
        assert spec["serviceAccountName"] == "mawb"
        assert spec["securityContext"] == {
            "fsGroup": 10001,
            "runAsNonRoot": True,
            "runAsUser": 10001,
        }
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
        assert spec["nodeSelector"] == {"workload": "mawb"}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["workspace"]["persistentVolumeClaim"] == {"claimName": "mawb-workspace"}
        assert volumes["flow"]["configMap"]["name"] == "mawb-flow-lead-qualification-v1-v1"
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts == {"workspace": "/var/lib/mawb", "flow": "/etc/mawb/flows",
                          "xcom": "/airflow/xcom"}  # the row counts the task pushes
    manifest = (tmp_path / "canvas" / "mawb_lead_qualification_v1.configmap.json").read_text()
    import json

    kubernetes_validate.validate(json.loads(manifest), version, strict=True)


def test_dag_test_delivers_a_connected_flow_through_smtp(
    dags_folder: Path, tmp_path: Path, timings: dict[str, float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A flow that names a connection gets a last `deliver` task per partition, which sends
    what the tick queued to a real SMTP server; a flow without one has no such task."""
    import sys

    import yaml

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "channels"))
    from channel_servers import SMTP_PASSWORD, SmtpServer, self_signed, smtp_settings

    monkeypatch.setenv("MAIL_PASSWORD", SMTP_PASSWORD)
    (tmp_path / "tls").mkdir()
    cert, key = self_signed(tmp_path / "tls")
    server = SmtpServer(cert, key).start()
    try:
        flow = mawb.load_template("lead_welcome_v1")
        flow.settings.connections = {"email": "mail"}
        workspace = demo_workspace(tmp_path / "airflow", flow, 2)
        (workspace.home / "connections.yaml").write_text(
            yaml.safe_dump({"connections": {"mail": smtp_settings(server, cert)}}))
        compile_airflow(flow, dags_folder, partitions=2, home=str(workspace.home),
                        task_shape="coarse")
        dag = _dagbag(dags_folder, timings, "coarse").dags["mawb_lead_welcome_v1"]
        assert {task.task_id: task.downstream_task_ids for task in dag.tasks} == {
            f"p{k}.{task}": {f"p{k}.{t}" for t in after}
            for k in (0, 1) for task, after in (("tick", {"deliver"}), ("deliver", set()))}
        started = time.perf_counter()
        assert dag.test(logical_date=PARITY_TICK).state == "success"
        timings["dag.test coarse + deliver (2 tasks x 2 partitions)"] = (
            time.perf_counter() - started)
        sent = 0
        for partition in range(2):
            with workspace.connection(partition, read_only=True) as connection:
                statuses = dict(connection.execute(
                    "SELECT status, count(*) FROM outbox_all GROUP BY 1").fetchall())
            assert "queued" not in statuses and "sending" not in statuses, statuses
            sent += statuses.get("sent", 0)
        assert sent > 0 and len(server.mailbox.messages) == sent, statuses
    finally:
        server.stop()
    plain = mawb.load_template("lead_welcome_v1")
    compile_airflow(plain, tmp_path / "plain", partitions=2, task_shape="coarse")
    assert "_deliver" not in (tmp_path / "plain" / "mawb_lead_welcome_v1.py").read_text()
