"""Shared fixtures for the compiler tests: an Airflow home migrated once per session.

Airflow reads its configuration when first imported, so the environment is set here, at
collection time, before any test imports it: a throw-away AIRFLOW_HOME with a SQLite
database, no example DAGs, unit-test mode. `airflow_db` runs the migration once per
session (about 20 s); every Airflow test reuses it.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

import pytest

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="mawb-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(_AIRFLOW_HOME / "dags"),
        # Airflow's 30 s default is too short on a loaded 2-core machine; a slow import
        # is not what these tests check.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
    }
)

TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def timings() -> dict[str, float]:
    """Measured durations, printed in the terminal summary (the report's numbers)."""
    return TIMINGS


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """AIRFLOW_HOME with a migrated metadata database (created once per session)."""
    started = time.perf_counter()
    from airflow.utils import db

    db.initdb()
    TIMINGS["airflow import + initdb"] = time.perf_counter() - started
    return _AIRFLOW_HOME


@pytest.fixture
def dags_folder(airflow_db: Path) -> Path:
    """Airflow's configured (and emptied) dags folder: dag.test() syncs that bundle to the DB."""
    folder = airflow_db / "dags"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    return folder


@pytest.fixture
def recording_mawb(tmp_path: Path) -> tuple[Path, Path]:
    """An executable standing in for `mawb` that appends each argv to a log, one per line.

    It lets dag.test() run every task for real and shows exactly which steps ran, in which
    order, with which arguments, without depending on the engine.
    """
    log = tmp_path / "steps.log"
    script = tmp_path / "mawb-recorder"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n', encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("mawb compile timings")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{name}: {seconds:.3f} s")
