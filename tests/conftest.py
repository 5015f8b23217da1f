"""How the suite is split over pytest-xdist workers (`-n 2 --dist loadgroup`, see pyproject).

A test is its own work unit unless it shares expensive setup:

- a module whose tests use a module- or class-scoped fixture defined in that module (a
  Streamlit server, a seeded workspace, a browser page, an `npm ci`) is one unit, so that setup
  runs once, on one worker, and the module's tests keep their order;
- every test that needs the migrated Airflow database (`airflow_db`) or is marked `airflow`
  joins one group across modules: Airflow reads its configuration once per process and the
  migration costs tens of seconds, so it happens on one worker only.

Units are handed out in collection order as workers free up, so the modules measured to take
longest run first (longest first keeps both workers busy to the end); the rest keep pytest's
order. Without xdist nothing is reordered.

Hypothesis runs without its per-example deadline: on a loaded shared machine a slow example
is not a failure (speed targets live in bench/). Example counts stay as each test sets them.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("mawb", deadline=None)
settings.load_profile("mawb")

AIRFLOW_GROUP = "airflow"

# The longest work units first (from --durations on the 2-core machine). A module missing
# here just runs after these, in pytest's order; nothing is ever left out.
LONGEST_FIRST = [
    "tests/engine/test_properties.py",
    "tests/notebooks/test_notebooks.py",
    "tests/ui/test_trust_e2e.py",
    "tests/ui/test_pages_e2e.py",
    "tests/ui/test_canvas_browser.py",
    AIRFLOW_GROUP,
    "tests/engine/test_speed.py",
    "tests/engine/test_manifest.py",
    "tests/ui/test_canvas_bundle.py",
    "tests/engine/test_crash.py",
    "tests/ui/test_builder_e2e.py",
]


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _shares_module_setup(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        definitions[-1].scope in ("module", "class") and definitions[-1].baseid == _module(item)
        for definitions in info.name2fixturedefs.values()
        if definitions
    )


def work_unit(item: pytest.Item) -> str:
    """The xdist group of a test: Airflow's, its module's, or its own node id."""
    if "airflow_db" in getattr(item, "fixturenames", ()) or item.get_closest_marker("airflow"):
        return AIRFLOW_GROUP
    return _module(item) if _shares_module_setup(item) else item.nodeid


def _rank(item: pytest.Item, unit: str) -> int:
    order = {name: position for position, name in enumerate(LONGEST_FIRST)}
    return order.get(unit, order.get(_module(item), len(order)))


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    units = {item.nodeid: work_unit(item) for item in items}
    for item in items:
        if units[item.nodeid] != item.nodeid:
            item.add_marker(pytest.mark.xdist_group(units[item.nodeid]))
    if os.environ.get("PYTEST_XDIST_WORKER"):  # every worker sorts alike, as xdist requires
        items.sort(key=lambda item: _rank(item, units[item.nodeid]))
