"""`mawb flows` without a service: list what is deployed and change lifecycles directly."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd
from typer.testing import CliRunner

from mawb.cli import app
from mawb.engine import Workspace
from mawb.model import Flow
from mawb.service import client

if TYPE_CHECKING:
    from pathlib import Path


def test_flows_list_and_lifecycle_commands(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    workspace = Workspace(home)
    workspace.import_contacts(pd.DataFrame({"contact_id": ["c1", "c2"],
                                            "email": ["a@example.com", "b@example.com"]}))
    drip = (Flow.new("drip").add("start", "manual_trigger", contacts=["c1", "c2"])
            .add("wait", "delay_action", days=3).connect("start", "wait"))
    workspace.deploy(drip)
    workspace.deploy(Flow.new("other").add("start", "manual_trigger"))
    workspace.tick(drip, datetime.now(UTC))
    runner = CliRunner(env={"MAWB_USER": "ann"})

    listed = json.loads(runner.invoke(app, ["flows", "list", "--json", "--home", str(home)])
                        .stdout)
    assert [(r["id"], r["version"], r["state"], r["active"]) for r in listed] == [
        ("drip", 1, "draft", 2), ("other", 1, "draft", 0)]
    assert listed[0]["last_tick"] is not None and listed[1]["last_tick"] is None

    live = runner.invoke(app, ["flows", "live", "drip", "--home", str(home)])
    assert live.exit_code == 0 and "drip is live (by ann)" in live.stdout
    refused = runner.invoke(app, ["flows", "pause", "other", "--home", str(home)])
    assert refused.exit_code == 2
    assert "flow other is draft; it cannot become paused" in refused.output
    unknown = runner.invoke(app, ["flows", "stop", "nope", "--home", str(home)])
    assert unknown.exit_code == 2 and "not deployed" in unknown.output

    stopped = runner.invoke(app, ["flows", "stop", "drip", "--home", str(home),
                                  "--note", "campaign over"])
    assert stopped.exit_code == 0, stopped.output
    table = runner.invoke(app, ["flows", "list", "--home", str(home)]).stdout
    assert "drip" in table and "stopped" in table
    with workspace.connection(0, read_only=True) as connection:
        assert connection.execute(
            "SELECT status, exit_reason, count(*) FROM enrollments GROUP BY ALL").fetchall() == [
            ("exited", "flow stopped", 2)]
        assert connection.execute(
            "SELECT state, changed_by, note FROM flow_lifecycle ORDER BY changed_at"
        ).fetchall() == [("live", "ann", None), ("stopped", "ann", "campaign over")]
    assert client.running(home) is None  # no service.json: the changes were made directly


def test_a_stale_service_file_is_not_a_running_service(tmp_path: Path) -> None:
    """A service killed with SIGKILL leaves service.json behind; its dead pid gives it away."""
    home = tmp_path / "ws"
    home.mkdir()
    (home / client.SERVICE_FILE).write_text(json.dumps(
        {"pid": 2**22 + 12345, "host": "127.0.0.1", "port": 8600, "started_at": "2026-01-01"}))
    assert client.running(home) is None
    info = client.announce(home, "127.0.0.1", 8765)
    assert client.running(home) == info
    client.retire(home)
    assert not (home / client.SERVICE_FILE).exists()
