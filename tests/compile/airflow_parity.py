"""What the Airflow parity tests share: one small population, and stores compared row for row.

A workspace run by a compiled DAG (under `dag.test()` or a real scheduler) must end in
exactly the store the embedded engine leaves for the same input and clock.
"""

from __future__ import annotations

import pendulum

import mawb
import mawb.engine

PARITY_TICK = pendulum.datetime(2026, 11, 2, 9, 0, tz="UTC")
POPULATION = 120


def demo_workspace(home: object, flow: mawb.Flow, partitions: int,
              population: int = POPULATION) -> mawb.engine.Workspace:
    """A workspace with the same small population and recent events as every other."""
    from mawb.data import synthetic_contacts, synthetic_events

    created = mawb.engine.Workspace(home, partitions)  # type: ignore[arg-type]
    contacts = synthetic_contacts(population, seed=0)
    created.import_contacts(contacts)
    created.import_events(synthetic_events(contacts, days=2, seed=0, end=PARITY_TICK))
    created.deploy(flow)
    return created


def same_stores(airflow: mawb.engine.Workspace, embedded: mawb.engine.Workspace) -> None:
    """Every table equal, except that `runs` may hold more stages under Airflow: the embedded
    tick skips stages its plan knows have nothing to do, a task records every stage it ran."""
    airflow_rows, embedded_rows = store_rows(airflow), store_rows(embedded)
    runs = [name for name in airflow_rows if name.endswith("/runs")]
    for name in runs:
        assert set(embedded_rows.pop(name)) <= set(airflow_rows.pop(name)), name
    assert airflow_rows == embedded_rows


def store_rows(workspace: mawb.engine.Workspace) -> dict[str, list[str]]:
    """Every table of every partition store, rows sorted, as comparable text."""
    rows: dict[str, list[str]] = {}
    for partition in range(workspace.partitions):
        with workspace.connection(partition, read_only=True) as connection:
            tables = [row[0] for row in connection.execute("SHOW TABLES").fetchall()]
            for table in tables:
                # runs: which stages ran at which tick; started/finished are wall-clock times
                columns = "flow_id, tick_time, stage, status" if table == "runs" else "*"
                query = f'SELECT {columns} FROM "{table}"'
                found = connection.execute(query).fetchall()
                rows[f"{partition}/{table}"] = sorted(map(repr, found))
    return rows
