"""Notebook timings, printed in the terminal summary (how long each notebook takes to run)."""

from __future__ import annotations

import pytest

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
