"""Notebook timings, printed in the terminal summary (how long each notebook takes to run)."""

from __future__ import annotations

import os

import pytest

# The kernels inherit this: notebook 04 imports its DAGs in a DagBag, whose 30 s default
# import timeout a loaded 2-core machine can exceed (a slow import is not what it checks).
os.environ.setdefault("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "300")

TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def notebook_timings() -> dict[str, float]:
    return TIMINGS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("notebook execution times")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{name}: {seconds:.1f} s")
        terminalreporter.write_line(f"total: {sum(TIMINGS.values()):.1f} s")
