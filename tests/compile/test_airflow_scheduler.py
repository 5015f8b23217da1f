"""A compiled DAG under a real Airflow 3 scheduler (LocalExecutor) ends in the embedded store.

`dag.test()` runs every task in the test's own process; this runs them the way production
does: the scheduler creates the task instances, honours the partitions' single-slot pools,
and LocalExecutor workers run each task through the API server's execution API. Two runs of
the coarse DAG (two partitions, a small population), triggered through the REST API, must
leave exactly the store the embedded engine leaves after the same two ticks.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path  # noqa: TC003 - pytest resolves fixture annotations

import pytest
from airflow_parity import PARITY_TICK, demo_workspace, store_rows
from airflow_processes import (
    RestClient,
    airflow_env,
    copy_database,
    free_port,
    running_airflow,
)

import mawb
from mawb.compile import compile_airflow

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
TICKS = [PARITY_TICK, PARITY_TICK + timedelta(days=2)]  # the second tick ends the 2-day wait
# A bound, not a speed target: start-up and four tasks take minutes on a loaded 2-core box.
DEADLINE_SECONDS = 600
# Feb 29: no fire between the DAG's start date (2025-01-01) and 2028, so the scheduler starts
# no run of its own (a schedule with a past fire would run it on unpause: catchup=False runs
# the latest one) and the two triggered runs are the only ones.
NO_FIRE_BEFORE_2028 = "0 9 29 2 *"


def _finished(answer: dict) -> bool:
    runs = answer["dag_runs"]
    return len(runs) == len(TICKS) and all(r["state"] in ("success", "failed") for r in runs)


def _tail(home: Path) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                     for log in sorted(home.glob("*.log")))


def test_a_real_scheduler_runs_two_ticks_into_the_embedded_engines_store(
    airflow_db: Path, tmp_path: Path, timings: dict[str, float]
) -> None:
    flow = mawb.load_template("lead_welcome_v1").model_copy(update={"id": "scheduled_welcome"})
    home, dag_id = tmp_path / "airflow-home", "mawb_scheduled_welcome"
    dags = home / "dags"
    compile_airflow(flow, dags, partitions=2, home=str(tmp_path / "workspace-airflow"),
                    task_shape="coarse", schedule=NO_FIRE_BEFORE_2028)
    pools = json.loads((dags / "mawb_pools.json").read_text())
    copy_database(airflow_db / "airflow.db", home / "airflow.db")
    port = free_port()
    rest = RestClient(port)
    started = time.monotonic()
    deadline = started + DEADLINE_SECONDS
    with running_airflow(home, airflow_env(home, dags, port)) as processes:
        try:  # the workspaces are built while Airflow starts: no task runs before a trigger
            airflow = demo_workspace(tmp_path / "workspace-airflow", flow, 2)
            embedded = demo_workspace(tmp_path / "workspace-embedded", flow, 2)
            rest.wait_for("/monitor/health", deadline, processes)
            timings["real scheduler: API server up"] = time.monotonic() - started
            for name, pool in pools.items():  # what `airflow pools import` does, over REST
                rest.call("POST", "/pools", {"name": name, **pool})
            rest.wait_for(f"/dags/{dag_id}", deadline, processes)  # parsed by the processor
            timings["real scheduler: DAG parsed"] = time.monotonic() - started
            for index, tick in enumerate(TICKS):
                rest.call("POST", f"/dags/{dag_id}/dagRuns",
                          {"dag_run_id": f"tick-{index}", "logical_date": tick.isoformat()})
            runs = rest.wait_for(f"/dags/{dag_id}/dagRuns", deadline, processes, _finished)
            timings["real scheduler: two runs done"] = time.monotonic() - started
            instances = rest.call("GET", f"/dags/{dag_id}/dagRuns/~/taskInstances")
        except BaseException as error:
            raise AssertionError(f"{error}\n{_tail(home)}") from error
    timings["real scheduler: total, processes stopped"] = time.monotonic() - started
    assert [run["state"] for run in runs["dag_runs"]] == ["success", "success"], _tail(home)
    ran = {(ti["dag_run_id"], ti["task_id"]): (ti["state"], ti["pool"])
           for ti in instances["task_instances"]}
    assert ran == {(f"tick-{index}", f"p{k}.tick"): ("success", f"mawb_p{k}")
                   for index in range(len(TICKS)) for k in (0, 1)}
    for tick in TICKS:
        embedded.tick(flow, now=tick)
    airflow_rows = store_rows(airflow)
    assert airflow_rows == store_rows(embedded)  # coarse: the same stages ran, runs included
    for partition in (0, 1):  # both ticks ran in both partitions, and did work
        assert airflow_rows[f"{partition}/enrollments"] and airflow_rows[f"{partition}/messages"]
        with airflow.connection(partition, read_only=True) as connection:
            ticks = connection.execute("SELECT DISTINCT tick_time FROM runs").fetchall()
        assert sorted(tick for (tick,) in ticks) == [tick.naive() for tick in TICKS]
