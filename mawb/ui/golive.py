"""Going live from the workbench: a flow's lifecycle buttons and the DAG bundle download.

Lifecycle changes follow the one-writer rule (docs/architecture.md, section 2): while the
workspace's service runs, a button is a command dropped in the spool for the service to apply
(`mawb.service.client.submit`); with no service, the change is made directly, as
`mawb flows live|pause|stop` does. Either way the state shown afterwards is read back from the
store, never assumed. The parts that need the live-service code import it lazily and say so
plainly when it is not installed.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mawb.model import Flow

ACTIONS = {"draft": ("live",), "live": ("pause", "stop"), "paused": ("resume", "stop"),
           "stopped": ("live",)}
"""Buttons offered in each state (the lifecycle's own transitions decide what is allowed)."""
TARGET = {"live": "live", "resume": "live", "pause": "paused", "stop": "stopped"}
LABELS = {"live": "Go live", "resume": "Resume", "pause": "Pause", "stop": "Stop"}


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


def lifecycle_available() -> bool:
    try:
        import mawb.engine.lifecycle  # noqa: F401
    except ImportError:
        return False
    return True


def service_running(home: Path) -> bool:
    try:
        from mawb.service.client import running
    except ImportError:
        return False
    return running(home) is not None


def change_state(home: Path, flow: Flow, action: str) -> Outcome:
    """Apply a lifecycle button for `flow` in the workspace at `home` (deploying the flow
    first when it goes live and the store does not hold it yet)."""
    if action not in TARGET:
        return Outcome(False, f"unknown action {action!r}")
    if not lifecycle_available():
        return Outcome(False, "This installation has no flow lifecycle (mawb.engine.lifecycle).")
    state = TARGET[action]
    if service_running(home):
        return _via_service(home, flow, state)
    return _directly(home, flow, state)


def _via_service(home: Path, flow: Flow, state: str) -> Outcome:
    from mawb.service.client import ask, command

    records = []
    if state == "live":
        records.append(command("deploy", flow=json.loads(flow.to_json())))
    records.append(command("lifecycle", flow_id=flow.id, state=state))
    return Outcome(*ask(home, records, f"Asked the service to make {flow.id} {state}; it "
                        "applies requests within about a second.",
                        done=f"{flow.id} is {state} (applied by the service)."))


def _directly(home: Path, flow: Flow, state: str) -> Outcome:
    from mawb.engine import Workspace, lifecycle

    workspace = Workspace(home)
    try:
        if state == "live" and not workspace.versions(flow.id):
            workspace.deploy(flow)
        lifecycle.change(workspace, flow.id, state, note="from the workbench")
    except (lifecycle.LifecycleError, ValueError) as error:
        return Outcome(False, str(error))
    return Outcome(True, f"{flow.id} is {state}.")


# -- the DAG bundle ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DagOptions:
    kubernetes: bool = False
    partitions: int = 1
    schedule: str | None = None


def dag_bundle(flow: Flow, options: DagOptions) -> tuple[bytes, list[str]]:
    """A zip of everything `mawb compile --target airflow` writes for `flow` (the DAG `.py`,
    the flow `.json` it loads, the partitions' pools file and, with Kubernetes, the pod
    settings); returns the bytes and the names inside."""
    from mawb.compile import compile_airflow  # Airflow-side code: only when asked for

    with tempfile.TemporaryDirectory(prefix="mawb-dag-") as folder:
        compile_airflow(flow, folder, kubernetes=options.kubernetes,
                        partitions=options.partitions, schedule=options.schedule)
        root = Path(folder)
        names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in names:
                archive.write(root / name, name)
    return buffer.getvalue(), names
