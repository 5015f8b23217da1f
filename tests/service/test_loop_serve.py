"""`mawb serve` end to end: a real process on a loopback port, driven over HTTP and the CLI.

An event posted with an API key (made by `mawb keys create`) reaches the sandbox `messages`
table through the spool and the loop; while the service runs, `mawb flows pause` and `mawb run`
go through it (or refuse) instead of opening the store; SIGTERM stops it and removes its
`service.json`.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from mawb.cli import app
from mawb.engine import Workspace, lifecycle
from mawb.engine.store import connect
from mawb.model import Flow
from mawb.service import client

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow
BOUND = 10.0  # seconds for an event to become a message on a loaded 2-core machine


def read(home: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = connect(home / "store.duckdb", read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def wait_for(check: Any, timeout: float = BOUND) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    return check()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str, subprocess.Popen[str]]]:
    home = tmp_path / "ws"
    workspace = Workspace(home)
    workspace.import_contacts(pd.DataFrame({
        "contact_id": ["c1", "c2"], "first_name": ["Ann", "Bob"],
        "email": ["ann@example.com", "bob@example.com"], "email_consent": [True, True]}))
    flow = (Flow.new("welcome").add("start", "event_trigger", event="signup")
            .add("mail", "email_send", subject="Hi {{ first_name }}", body="Hello")
            .connect("start", "mail"))
    picked = (Flow.new("picked").add("start", "manual_trigger")
              .add("mail", "email_send", subject="Picked {{ first_name }}", body="Hello")
              .connect("start", "mail"))
    for each in (flow, picked):
        workspace.deploy(each)
        lifecycle.change(workspace, each.id, "live", by="tests")
    picked.save(tmp_path / "picked.json")
    process = subprocess.Popen(
        [sys.executable, "-c", "from mawb.cli import main; main()", "serve", "--home", str(home),
         "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "MAWB_HOME": str(home)})
    try:
        url = _listening(process)
        yield home, url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def _listening(process: subprocess.Popen[str], timeout: float = 60) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline and process.poll() is None:
            if selector.select(0.2):
                line = process.stdout.readline()
                if "listening on " in line:
                    return line.split("listening on ")[1].split()[0]
    errors = process.stderr.read() if process.stderr else ""
    raise AssertionError(f"mawb serve did not start: {errors}")


def test_serve_takes_events_and_routes_writes_until_sigterm(
        served: tuple[Path, str, subprocess.Popen[str]]) -> None:
    home, url, process = served
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "site", "--home", str(home)])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[0]
    info = client.running(home)
    assert info is not None and info.pid == process.pid and url.endswith(f":{info.port}")

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                      timeout=10) as http:
        started = time.monotonic()
        response = http.post("/v1/events", json={"contact_id": "c1", "name": "signup"})
        assert response.status_code == 202, response.text
        sent = wait_for(lambda: read(home, "SELECT contact_id, subject FROM messages"))
        assert sent == [("c1", "Hi Ann")]
        assert time.monotonic() - started < BOUND

        paused = runner.invoke(app, ["flows", "pause", "welcome", "--home", str(home)])
        assert paused.exit_code == 0, paused.output
        assert f"pid {process.pid}" in paused.stdout and "welcome is paused" in paused.stdout
        assert http.post("/v1/events", json={"contact_id": "c2", "name": "signup"}
                         ).status_code == 202
        assert wait_for(lambda: read(home, "SELECT count(*) FROM events")[0][0] == 2)
        time.sleep(1.0)
        assert read(home, "SELECT count(*) FROM messages WHERE flow_id = 'welcome'") == [
            (1,)]  # held while paused

        contacts = home.parent / "more.csv"
        contacts.write_text("contact_id,email,email_consent\nc3,c3@example.com,true\n")
        routed = runner.invoke(app, ["import-contacts", str(contacts), "--home", str(home)])
        assert routed.exit_code == 0, routed.output
        assert "applied: 1 contacts" in routed.stdout
        assert read(home, "SELECT email FROM contacts WHERE contact_id = 'c3'") == [
            ("c3@example.com",)]

        ids = home.parent / "ids.csv"
        ids.write_text("contact_id\nc2\n")
        enrolled = runner.invoke(app, ["enroll", str(home.parent / "picked.json"), "--contacts",
                                       str(ids), "--home", str(home)])
        assert enrolled.exit_code == 0, enrolled.output
        assert "queued 1 contacts at picked.start" in enrolled.stdout
        assert wait_for(lambda: read(home, "SELECT subject FROM messages WHERE flow_id = "
                                           "'picked'")) == [("Picked Bob",)]

        refused = runner.invoke(app, ["run", "welcome", "--once", "--home", str(home)])
        assert refused.exit_code != 0
        assert "a service is running for this workspace" in refused.output

        service = http.get("/v1/service").json()
        assert sorted(service["flows"]) == ["picked"] and service["iterations"] >= 2

        bad = http.post("/v1/commands", json={"command": "enroll", "flow_id": "welcome"})
        assert bad.status_code == 422 and bad.json()["field"] == "body.node_id"
        # Resumed over HTTP: the event that arrived while paused enrolls now, nothing is lost.
        resumed = http.post("/v1/flows/welcome/live")
        assert resumed.status_code == 202, resumed.text
        assert wait_for(lambda: read(home, "SELECT count(*) FROM messages WHERE flow_id = "
                                           "'welcome'")[0][0] == 2)
        assert read(home, "SELECT state, changed_by FROM flow_lifecycle ORDER BY changed_at")[
            -1] == ("live", "key:site")

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert not (home / client.SERVICE_FILE).exists()
