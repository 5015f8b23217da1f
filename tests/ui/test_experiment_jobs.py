"""Experiments run beside the page: progress while they compute, and Cancel that stops them.

The job runs the real simulator on a small synthetic population; cancel is honoured between
two ticks (`SimulationCancelled`), so a cancelled job ends early, without a result.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import mawb
from mawb.ui import experiment_jobs as jobs
from mawb.ui import experiment_runs as runs

if TYPE_CHECKING:
    from collections.abc import Callable


def test_a_job_reports_progress_and_its_result() -> None:
    flow = mawb.load_template("lead_welcome_v1")
    population = runs.builtin_population("synthetic", 30)
    job = jobs.start("simulation", flow.id, "Simulating", lambda progress, cancel:
                     runs.run_variant(flow, population, params={}, days=1,
                                      on_progress=progress, cancel=cancel))
    job.wait(120)
    assert not job.running and job.error is None and not job.cancelled
    assert job.progress == 1.0 and job.result.summary["enrolled"] > 0


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
