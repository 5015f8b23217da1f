"""The fast paths change nothing but speed.

Simulations run in memory and a sweep imports its population once; ticks skip the stages with
nothing due (`mawb.engine.plan`). Each test runs two paths that must agree — in memory vs a
file store, a sweep vs separate runs, a planned tick vs every stage stepped one by one — and
demands identical results, and that nothing is left behind. No timings are asserted here
(bench/simulate.py measures them).
"""

from __future__ import annotations

import contextlib
import tempfile
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from engine_harness import START, scratch_home

import mawb
from mawb.data import synthetic_contacts, synthetic_events
from mawb.engine import Workspace
from mawb.engine.reference import engine_result
from mawb.simulate import SimulationCancelled, simulate, sweep

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

TEMPLATES = ["abandoned_cart_v1", "lead_qualification_v1"]


@pytest.fixture(scope="module")
def population() -> tuple[pd.DataFrame, pd.DataFrame]:
    contacts = synthetic_contacts(150, seed=4)
    return contacts, synthetic_events(contacts, days=14, seed=4)


@pytest.fixture
def watched_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private temp folder (and working folder): whatever a run leaves shows up there."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    yield tmp_path
    assert not list((tmp_path / "tmp").iterdir()), "a run left temp files behind"
    assert not list((tmp_path / "cwd").iterdir()), "a run wrote into the working folder"


@pytest.mark.parametrize(("template_id", "responses", "seed"), [
    ("lead_welcome_v1", "model", 7), ("trial_to_paid_v1", "none", 3),
])
def test_in_memory_equals_a_file_store(template_id: str, responses: str, seed: int,
                                       population: tuple[pd.DataFrame, pd.DataFrame],
                                       watched_temp: Path) -> None:
    flow = mawb.load_template(template_id)
    contacts, events = population
    options = {"days": 4, "seed": seed, "responses": responses, "events": events,
               "progress": False, "tick": "2h"}
    in_memory = simulate(flow, contacts, **options)
    with scratch_home() as kept:
        on_file = simulate(flow, contacts, home=kept, **options)
        assert on_file.workspace is not None and on_file.workspace.store_path().exists()
    assert in_memory.workspace is None
    assert in_memory.to_dict() == on_file.to_dict()
    assert in_memory.ticks > 0 and in_memory.summary["enrolled"] > 0


def test_a_sweep_imports_once_and_equals_separate_runs(
        population: tuple[pd.DataFrame, pd.DataFrame], watched_temp: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    flow = mawb.load_template("lead_welcome_v1")
    contacts, _ = population
    values = [0.2, 0.8]
    separate = [simulate(flow, contacts, params={"engagement_threshold": v}, days=6, seed=3,
                         progress=False).to_dict() for v in values]
    imports: list[int] = []
    original = Workspace.import_contacts

    def counting(self: Workspace, source: object) -> int:
        imports.append(1)
        return original(self, source)

    monkeypatch.setattr(Workspace, "import_contacts", counting)
    shares: list[float] = []
    result = sweep(flow, contacts, param="engagement_threshold", values=values, days=6, seed=3,
                   progress=False, on_progress=shares.append)
    assert len(imports) == 1
    assert [r.to_dict() for r in result.results] == separate
    assert list(result.table["messages_sent"]) == [d["summary"]["messages_sent"]
                                                   for d in separate]
    assert separate[0]["summary"]["messages_sent"] > separate[1]["summary"]["messages_sent"]
    assert shares == sorted(shares) and shares[-1] == pytest.approx(1.0)


def test_cancel_stops_between_ticks_and_cleans_up(
        population: tuple[pd.DataFrame, pd.DataFrame], watched_temp: Path) -> None:
    flow = mawb.load_template("lead_welcome_v1")
    asked: list[int] = []

    def cancel() -> bool:
        asked.append(1)
        return len(asked) >= 3

    with pytest.raises(SimulationCancelled, match="after 3 ticks"):
        simulate(flow, population[0], days=14, progress=False, cancel=cancel)
    with pytest.raises(SimulationCancelled):
        sweep(flow, population[0], param="engagement_threshold", values=[0.1, 0.9], days=14,
              progress=False, cancel=lambda: True)


def test_a_backtest_ticks_on_the_grid(population: tuple[pd.DataFrame, pd.DataFrame],
                                      watched_temp: Path) -> None:
    flow = mawb.load_template("abandoned_cart_v1")
    contacts, events = population
    fine = simulate(flow, contacts, events=events, responses="history", days=2,
                    progress=False, tick="2h")
    coarse = simulate(flow, contacts, events=events, responses="history", days=2,
                      progress=False, tick=timedelta(hours=8))
    assert coarse.ticks < fine.ticks <= 2 * 12 + 1
    assert fine.summary["enrolled"] > 0
    with pytest.raises(ValueError, match="must look like 5m"):
        simulate(flow, contacts, events=events, responses="history", days=1, tick="soon")


@pytest.mark.parametrize("template_id", TEMPLATES)
def test_a_planned_tick_equals_every_stage_stepped(
        template_id: str, population: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """`tick` skips stages with nothing due; `step` runs each stage itself (the Airflow
    path). Both must end in the same state, tick after tick."""
    flow = mawb.load_template(template_id)
    contacts = population[0]
    events = synthetic_events(contacts, days=10, seed=5, end=START + timedelta(days=4))
    with scratch_home() as planned_home, scratch_home() as stepped_home:
        planned, stepped = Workspace(planned_home), Workspace(stepped_home)
        with planned.session(), stepped.session():
            for workspace in (planned, stepped):
                workspace.import_contacts(contacts)
                workspace.import_events(events)
                workspace.deploy(flow)
            now = START
            for _ in range(12):
                planned.tick(flow, now)
                for stage in stepped.stages(flow):
                    stepped.step(flow, stage, now)
                due = planned.next_due(flow, now)
                assert due == stepped.next_due(flow, now)
                now = min(due, now + timedelta(hours=8)) if due else now + timedelta(hours=8)
            mine, theirs = engine_result(planned, flow), engine_result(stepped, flow)
    for name in ("enrollments", "node_log", "tokens", "outbox", "messages"):
        assert getattr(mine, name) == getattr(theirs, name), name
    assert mine.node_log, "the flow did nothing at all"


def test_in_memory_workspace_holds_one_store_until_closed(tmp_path: Path) -> None:
    workspace = Workspace.in_memory(tmp_path)
    workspace.import_contacts(synthetic_contacts(20, seed=1))
    with workspace.connection(read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM contacts").fetchone() == (20,)
    assert not workspace.store_path().exists()
    workspace.close()
    with pytest.raises(RuntimeError, match=r"in-memory store .* is closed"):
        workspace.connection()
    assert not workspace.store_path().exists()


@pytest.mark.parametrize("template_id", ["lead_welcome_v1", "trial_to_paid_v1"])
def test_reading_run_constants_once_changes_no_row(
        template_id: str, population: tuple[pd.DataFrame, pd.DataFrame],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`Workspace.steady` (what a simulation runs in) reads params, lifecycle and older
    versions once and lets the plan skip its settled-enrollment check; without it every tick
    reads them again. Both runs must agree row for row."""
    from mawb.engine import tick as engine_tick

    flow = mawb.load_template(template_id)
    contacts, events = population
    options = {"days": 6, "seed": 2, "responses": "model", "events": events,
               "progress": False}
    calls: list[datetime] = []
    record = engine_tick.record_params

    def counted(connection: Any, flow: Any, now: datetime, params: Any) -> None:
        calls.append(now)
        record(connection, flow, now, params)

    monkeypatch.setattr(engine_tick, "record_params", counted)
    steady = simulate(flow, contacts, **options)
    assert len(calls) == 1, "a steady run records its params once"
    calls.clear()
    monkeypatch.setattr(Workspace, "steady", contextlib.nullcontext)
    every_tick = simulate(flow, contacts, **options)
    assert len(calls) == every_tick.ticks > 1
    assert steady.to_dict() == every_tick.to_dict()
    for name in ("funnel", "messages", "timeline"):
        pd.testing.assert_frame_equal(getattr(steady, name), getattr(every_tick, name))
    assert steady.summary["enrolled"] > 0
