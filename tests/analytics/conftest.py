"""A small real workspace for the dashboard queries: a simulated welcome flow on 120 contacts."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest

import mawb
from mawb.data import synthetic_contacts
from mawb.simulate import simulate

if TYPE_CHECKING:
    from pathlib import Path

FLOW_ID = "lead_welcome_v1"


@pytest.fixture(scope="session")
def simulated_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("analytics") / "home"
    flow = mawb.load_template(FLOW_ID)
    simulate(flow, synthetic_contacts(120, seed=5), days=3, seed=2, progress=False, home=home)
    return home


@pytest.fixture
def writable_home(simulated_home: Path, tmp_path: Path) -> Path:
    """A private copy of the simulated workspace for tests that write to the store."""
    return shutil.copytree(simulated_home, tmp_path / "home")
