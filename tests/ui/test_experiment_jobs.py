"""Experiments run beside the page: progress while they compute, and Cancel that stops them.

The job runs the real simulator on a small synthetic population; cancel is honoured between
two ticks (`SimulationCancelled`), so a cancelled job ends early, without a result.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from streamlit.testing.v1 import AppTest

import mawb
from mawb.ui import experiment_jobs as jobs
from mawb.ui import experiment_runs as runs

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

PAGE = Path(__file__).resolve().parents[2] / "pages" / "4_Experiments.py"


def test_cancel_stops_a_run_between_ticks() -> None:
    flow = mawb.load_template("lead_welcome_v1")
    population = runs.builtin_population("synthetic", 30)
    started = threading.Event()

    def work(progress: Callable[[float], None], cancel: Callable[[], bool]) -> object:
        def report(done: float) -> None:
            progress(done)
            started.set()

        return runs.run_sweep(flow, population, param="engagement_threshold",
                              values=[0.1, 0.5, 0.9], fixed={}, days=30, on_progress=report,
                              cancel=cancel)

    job = jobs.start("sweep", flow.id, "Sweeping", work)
    assert started.wait(120), "the sweep never reported progress"
    job.cancel()
    job.wait(120)
    assert job.cancelled and job.result is None and job.error is None
    assert 0 < job.progress < 1  # stopped early, in the first value's run


def test_the_page_keeps_the_last_result_while_a_run_computes_and_cancels_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAWB_HOME", str(tmp_path))
    app = AppTest.from_file(str(PAGE), default_timeout=120).run()
    app.radio(key="exp_population").set_value("Synthetic").run()
    app.number_input(key="exp_size").set_value(30).run()
    app.number_input(key="exp_days").set_value(1).run()
    app.button(key="exp_run").click().run()
    state = app.session_state[runs.STATE_KEY]
    state["job"].wait(120)
    app.run()
    assert state["last"].summary["enrolled"] > 0 and "job" not in state  # the result, taken
    enrolled = {m.label: m.value for m in app.metric}["Enrolled"]
    # A longer run: while it computes, its progress and Cancel show above the last result.
    app.number_input(key="exp_days").set_value(60).run()
    app.button(key="exp_run").click().run()
    job = state["job"]
    try:
        app.run()  # a rerun while it computes (the browser's poll)
        assert job.running and app.button(key="exp_run").disabled
    except AssertionError:
        job.cancel()
        job.wait(120)
        raise
    assert app.button(key="exp_cancel_simulation") is not None
    assert {m.label: m.value for m in app.metric}["Enrolled"] == enrolled
    app.button(key="exp_cancel_simulation").click().run()
    job.wait(120)
    app.run()
    assert job.cancelled and "was cancelled at" in app.info[0].value
    assert {m.label: m.value for m in app.metric}["Enrolled"] == enrolled  # still the last one
    assert "job" not in state and not app.exception
