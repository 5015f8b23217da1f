"""A small real workspace for the page tests: demo-like data with one simulated flow history.

Built once per test session (a simulation takes seconds) into pytest's session temp folder
and only read afterwards; tests that write (uploads, saved versions) copy it first.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING, Any

import mawb
from mawb.data import synthetic_contacts, synthetic_events
from mawb.simulate import simulate

if TYPE_CHECKING:
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

FLOW_ID = "lead_welcome_v1"
CONTACTS = 300
DAYS = 3
_built: dict[Path, Path] = {}


def seed_workspace(home: Path) -> Path:
    """Import synthetic contacts and events into `home` and simulate the welcome flow there."""
    contacts = synthetic_contacts(CONTACTS, seed=3)
    flow = mawb.load_template(FLOW_ID)
    simulate(flow, contacts, days=DAYS, seed=1, progress=False, home=home)
    from mawb.engine import Workspace

    Workspace(home).import_events(synthetic_events(contacts, days=7, seed=3))
    return home


def demo_home(base: Path) -> Path:
    """The shared seeded workspace under `base` (pytest's basetemp), built on first use."""
    home = base / "ui-demo-home"
    if base not in _built:
        if home.exists():
            shutil.rmtree(home)
        _built[base] = seed_workspace(home)
    return home


def copy_of_demo(base: Path, target: Path) -> Path:
    """A private, writable copy of the shared seeded workspace."""
    shutil.copytree(demo_home(base), target)
    return target


def canvases(app: AppTest) -> dict[str, dict[str, Any]]:
    """The flow canvases an AppTest run drew, by widget key, with the data sent to them."""
    found = {}
    for element in app.get("bidi_component"):
        proto = element.proto  # type: ignore[attr-defined]
        if proto.component_name == "mawb.flow_canvas":
            key = str(element.key or proto.id).split("-", 2)[-1]  # type: ignore[attr-defined]
            found[key] = json.loads(proto.json)
    return found
