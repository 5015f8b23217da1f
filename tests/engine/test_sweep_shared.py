"""A sweep runs its variants together until the swept param first matters; that changes no row.

Each variant of an in-memory sweep must leave exactly the store a lone simulation with its
value leaves: every row of every table the engine writes (only the wall-clock times of `runs`
differ between any two runs and are left out). The flows cover the param read mid-run
(lead_welcome_v1's `engaged` condition on day 5), read by a trigger from the first tick
(lead_qualification_v1, as soon as a score changes) and never read at all (win_back_v1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

import mawb
from mawb.data import synthetic_contacts, synthetic_events
from mawb.simulate import param_readers

if TYPE_CHECKING:
    from mawb.engine import Workspace
    from mawb.model import Flow

TABLES = {
    "contacts": "SELECT * FROM contacts",
    "events": "SELECT * FROM events",
    "enrollments": "SELECT * FROM enrollments",
    "tokens": "SELECT * FROM tokens",
    "node_log": "SELECT * FROM node_log",
    "outbox": "SELECT * FROM outbox_all",
    "messages": "SELECT * FROM messages",
    "run_params": "SELECT * FROM run_params",
    "trigger_state": "SELECT * FROM trigger_state",
    "suppressions": "SELECT * FROM suppressions",
    "runs": "SELECT flow_id, tick_time, stage, status, version, error FROM runs",
}


def _rows(workspace: Workspace) -> dict[str, list[tuple[Any, ...]]]:
    with workspace.connection(read_only=True) as connection:
        return {name: sorted(connection.execute(sql).fetchall(), key=repr)
                for name, sql in TABLES.items()}


@pytest.fixture
def stores(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, list[tuple[Any, ...]]]]:
    """Every table of each run's store, read when the run reads its result back, in the
    order the runs finish (a sweep's variants run side by side: see `by_params`)."""
    import sys

    module = sys.modules["mawb.simulate"]
    collected: list[dict[str, list[tuple[Any, ...]]]] = []
    original = module._collect

    def collect(workspace: Workspace, flow: Flow, params: dict[str, Any], *args: Any,
                **kwargs: Any) -> Any:
        collected.append({**_rows(workspace), "params": [tuple(sorted(params.items()))]})
        return original(workspace, flow, params, *args, **kwargs)

    monkeypatch.setattr(module, "_collect", collect)
    return collected


@pytest.mark.parametrize(("template_id", "param", "values", "readers"), [
    ("lead_welcome_v1", "engagement_threshold", [0.3, 0.9], {"engaged"}),
    ("lead_qualification_v1", "score_threshold", [10, 80], {"qualified"}),
    ("win_back_v1", "inactive_days", [30, 90], set()),
])
def test_each_variant_leaves_the_store_a_lone_run_leaves(
        template_id: str, param: str, values: list[Any], readers: set[str],
        stores: list[dict[str, list[tuple[Any, ...]]]]) -> None:
    flow = mawb.load_template(template_id)
    found = param_readers(flow, param)
    assert found is not None and found <= {node.id for node in flow.nodes}
    if readers:
        assert found, f"{param} is read by a node of {template_id}"
    else:
        assert not found
    contacts = synthetic_contacts(60, seed=6)
    events = synthetic_events(contacts, days=6, seed=6)
    options = {"days": 6, "seed": 5, "events": events, "progress": False}
    alone = [mawb.simulate(flow, contacts, params={param: value}, **options).to_dict()
             for value in values]
    lone_stores = list(stores)
    stores.clear()
    swept = mawb.sweep(flow, contacts, param=param, values=values, **options)
    assert [result.to_dict() for result in swept.results] == alone
    assert len(stores) == len(lone_stores) == len(values)
    variants = {tuple(store["params"]): store for store in stores}
    for value, lone in zip(values, lone_stores, strict=True):
        variant = variants[tuple(lone["params"])]
        for table in TABLES:
            assert variant[table] == lone[table], f"{param}={value}: table {table} differs"
    assert lone_stores[0]["node_log"], "the flow did nothing at all"
    # The values part within the run exactly when a node reads the param (so the shared
    # prefix really ends mid-run there, and really lasts the whole run for win_back_v1).
    assert (lone_stores[0]["node_log"] != lone_stores[1]["node_log"]) == bool(readers)
    assert lone_stores[0]["run_params"] != lone_stores[1]["run_params"]
