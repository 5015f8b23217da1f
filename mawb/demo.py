"""The demo workspace `make run` opens on: demo data, every template, a simulated history.

Built in a sibling folder and moved into place when complete, so an interrupted build leaves
nothing half-made and running it again duplicates nothing; the Monitor and Experiments pages
then have real funnels, messages and engagement to show on first start.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

DEMO_MARKER = "demo.json"
DEMO_FORMAT = 1
DEMO_FLOWS = ("lead_welcome_v1", "trial_to_paid_v1", "customer_onboarding_v1")
DEMO_DAYS = 14
DEMO_STEP_HOURS = 12  # the simulator's longest clock jump: coarse enough to build in seconds


def build_demo(home: Path, *, rebuild: bool = False, simulated: tuple[str, ...] = DEMO_FLOWS,
               days: float = DEMO_DAYS, progress: Any = None) -> dict[str, Any] | None:
    """Build the demo workspace at `home`; None when a finished one is already there.

    It is built in a sibling folder (with `mawb.simulate` running each of `simulated` into
    it, from the demo epoch) and moved into place when complete: an interrupted build leaves
    nothing half-made and a second run duplicates nothing. A folder holding anything but a
    demo workspace is refused, never overwritten.
    """
    if _is_demo(home) and not rebuild:
        return None
    if home.exists() and any(home.iterdir()) and not _is_demo(home):
        raise ValueError("the folder holds files that are not a mawb demo workspace; choose "
                         "another --home (nothing was changed)")
    home.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{home.name}-building-", dir=home.parent))
    try:
        marker = _fill_demo(building, simulated, days, progress or (lambda _: None))
        retired = home.with_name(f".{home.name}-old-{building.name}") if home.exists() else None
        if retired is not None:
            home.rename(retired)
        building.rename(home)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return marker


def _is_demo(home: Path) -> bool:
    try:
        marker = json.loads((home / DEMO_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("format") == DEMO_FORMAT


def _fill_demo(home: Path, simulated: tuple[str, ...], days: float,
               progress: Any) -> dict[str, Any]:
    from mawb.data import demo_contacts, demo_events
    from mawb.engine import Workspace
    from mawb.simulate import simulate
    from mawb.templates import list_templates, load_template

    workspace = Workspace(home)
    contacts = demo_contacts()
    progress(f"importing {len(contacts)} demo contacts and their events")
    workspace.import_contacts(contacts)
    events = workspace.import_events(demo_events(), source_name="demo")
    deployed = [workspace.deploy(flow).id for flow in list_templates()]
    summaries = {}
    for template_id in simulated:
        progress(f"simulating {template_id} for {days:g} days")
        result = simulate(load_template(template_id), contacts, days=days, home=home,
                          progress=False, max_step=timedelta(hours=DEMO_STEP_HOURS))
        summaries[template_id] = result.summary
    marker = {"format": DEMO_FORMAT, "contacts": len(contacts), "events": events,
              "deployed": deployed, "simulated": summaries, "days": days}
    (home / DEMO_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return marker
