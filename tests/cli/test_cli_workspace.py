"""Workspace commands: run on the real clock, status, enroll, ingest and import-contacts.

They all act on a workspace folder (`--home`); bad input is reported row by row and column
by column and loads nothing.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from cli_helpers import TEN_CONTACTS, cli, cli_json, count, error_lines, manual_flow

import mawb
from mawb.engine import Workspace
from mawb.engine.runner import parse_interval, run_on_clock


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "ws"
    result = cli("import-contacts", TEN_CONTACTS, "--home", home)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{TEN_CONTACTS}: 10 contacts imported"
    return home


def test_run_once_then_status_shows_who_is_where(home: Path) -> None:
    result = cli("run", "lead_welcome_v1", "--once", "--home", home)
    assert result.exit_code == 0, result.output
    assert "lead_welcome_v1 v1: tick 1 at " in result.stdout
    status = cli_json("status", "lead_welcome_v1", "--home", home)
    assert status["versions"] == [1]
    assert status["enrollments"] == {"total": 6, "active": 6}
    waiting = {row["node_id"]: row for row in status["nodes"]}
    assert waiting["wait_2d"]["waiting"] == 6
    assert waiting["wait_2d"]["due"] == 0
    wake = datetime.fromisoformat(waiting["wait_2d"]["next_wake"]).replace(tzinfo=UTC)
    assert timedelta(days=1.9) < wake - datetime.now(UTC) <= timedelta(days=2)
    assert sum(row["waiting"] for row in status["nodes"]) == 6
    assert status["messages"] == {"email": 4, "sms": 0, "web_push": 0, "social": 0}
    assert status["outbox"] == {"sent": 4, "suppressed": 2}
    text = cli("status", "lead_welcome_v1", "--home", home).stdout
    assert "enrollments: total 6, active 6" in text
    assert any(line.split()[:3] == ["wait_2d", "6", "0"] for line in text.splitlines())


def test_a_second_run_sends_nothing_twice(home: Path) -> None:
    for _ in range(2):
        assert cli("run", "lead_welcome_v1", "--home", home).exit_code == 0
    assert count(home / "store.duckdb", "SELECT count(*) FROM messages") == 4
    assert count(home / "store.duckdb", "SELECT count(*) FROM enrollments") == 6


def test_run_every_ticks_on_the_interval(home: Path) -> None:
    result = cli("run", "lead_welcome_v1", "--every", "1s", "--ticks", "2", "--home", home)
    assert result.exit_code == 0, result.output
    assert [line.split(" at ")[0] for line in result.stdout.splitlines()] == [
        "lead_welcome_v1 v1: tick 1", "lead_welcome_v1 v1: tick 2"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--every", "soon"], "interval 'soon': expected a positive number and a unit"),
        (["--every", "0m"], "interval '0m'"),
        (["--once", "--every", "5m"], "use either --once or --every, not both"),
    ],
)
def test_run_rejects_bad_intervals(home: Path, args: list[str], fragment: str) -> None:
    result = cli("run", "lead_welcome_v1", *args, "--home", home)
    assert result.exit_code == 2
    (line,) = error_lines(result)
    assert fragment in line


def test_clock_loop_keeps_a_grid_and_skips_missed_points(home: Path) -> None:
    flow = mawb.load_template("lead_welcome_v1")
    workspace = Workspace(home)
    workspace.deploy(flow)
    now = [1000.0]
    sleeps: list[float] = []
    durations = iter([10.0, 700.0, 10.0, 10.0])  # the second tick overruns two intervals

    def clock() -> datetime:
        now[0] += next(durations)  # the tick "takes" this long
        return datetime(2026, 11, 2, tzinfo=UTC)

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    ticks = run_on_clock(workspace, flow, every=parse_interval("5m"), max_ticks=4,
                         clock=clock, sleep=sleep, monotonic=lambda: now[0])
    assert ticks == 4
    assert sleeps == [290.0, 200.0, 290.0]  # after the overrun: the grid point at 1200 s


def test_status_of_a_flow_not_deployed(tmp_path: Path) -> None:
    status = cli_json("status", "win_back_v1", "--home", tmp_path / "ws")
    assert status["versions"] == []
    assert status["enrollments"] == {"total": 0}
    assert status["last_tick"] is None


def test_enroll_by_hand_then_tick(home: Path, tmp_path: Path) -> None:
    flow_file = manual_flow(tmp_path)
    ids = tmp_path / "ids.csv"
    ids.write_text("contact_id\nc01\nc02\nc06\n", encoding="utf-8")
    result = cli("enroll", flow_file, "--contacts", ids, "--home", home)
    assert result.exit_code == 0, result.output
    assert "queued 3 contacts at picked" in result.stdout
    assert cli_json("status", "hand_picked", "--home", home)["enrollments"]["total"] == 0
    assert cli("run", "hand_picked", "--once", "--home", home).exit_code == 0
    status = cli_json("status", "hand_picked", "--home", home)
    assert status["enrollments"] == {"total": 3, "completed": 3}
    assert status["messages"]["email"] == 2  # c06 has no email consent
    assert status["outbox"] == {"sent": 2, "suppressed": 1}


def test_run_refuses_a_flow_the_contacts_cannot_answer(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("contact_id,nickname\nz1,Zed\n", encoding="utf-8")
    assert cli("import-contacts", contacts, "--home", home).exit_code == 0
    with duckdb.connect(str(home / "store.duckdb")) as connection:  # no lifecycle column
        connection.execute("ALTER TABLE contacts DROP COLUMN lifecycle")
    result = cli("run", "lead_welcome_v1", "--home", home)
    assert result.exit_code == 1
    lines = error_lines(result)
    assert ("lead_welcome_v1: error [unknown_column] node start · params.audience: contacts "
            "have no attribute 'lifecycle'") in lines
    assert lines[-1] == "error: lead_welcome_v1: invalid flow (1 error); nothing was changed"
    assert count(home / "store.duckdb", "SELECT count(*) FROM runs") == 0


def test_enroll_names_unknown_contacts(home: Path, tmp_path: Path) -> None:
    ids = tmp_path / "ids.csv"
    ids.write_text("contact_id\nc01\nghost\n", encoding="utf-8")
    result = cli("enroll", manual_flow(tmp_path), "--contacts", ids, "--home", home)
    assert result.exit_code == 2
    (line,) = error_lines(result)
    assert line.startswith(f"error: {ids}: row 2, column contact_id: unknown contact 'ghost'")
    assert count(home / "store.duckdb", "SELECT count(*) FROM manual_requests") == 0


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [([], "flow lead_welcome_v1 has 0 manual_trigger nodes"),
     (["--node", "welcome"], "--node welcome: not a manual_trigger node")],
)
def test_enroll_needs_a_manual_trigger(home: Path, extra: list[str], fragment: str) -> None:
    result = cli("enroll", "lead_welcome_v1", "--contacts", TEN_CONTACTS, "--home", home,
                 *extra)
    assert result.exit_code == 2
    assert fragment in error_lines(result)[0]


def test_ingest_loads_events_once(home: Path, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"event_id": "e1", "contact_id": "c01", "name": "page_view", '
        '"ts": "2026-11-01T10:00:00Z", "properties": {"url": "/pricing"}}\n'
        '{"event_id": "e2", "contact_id": "c02", "name": "email_open", '
        '"ts": "2026-11-01T11:00:00Z"}\n', encoding="utf-8")
    for new, already in ((2, 0), (0, 2)):  # a re-ingest says nothing new was loaded
        result = cli("ingest", events, "--home", home)
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == f"{events}: {new} new events ({already} already loaded)"
    assert count(home / "store.duckdb", "SELECT count(*) FROM events") == 2


def test_ingest_of_a_bad_file_loads_nothing_and_names_rows(home: Path, tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text("event_id,contact_id,name,ts\n"
                      "e1,c01,page_view,2026-11-01T10:00:00Z\n"
                      "e2,,page_view,2026-11-01T10:00:00Z\n"
                      "e3,c03,page_view,yesterday-ish\n", encoding="utf-8")
    result = cli("ingest", events, "--home", home)
    assert result.exit_code == 2
    lines = error_lines(result)
    assert lines[0].startswith(f"error: {events}: row 2, column contact_id")
    assert "(+1 more problems below; nothing was imported)" in lines[0]
    assert lines[1].strip().startswith(f"{events}: row 3, column ts")
    assert count(home / "store.duckdb", "SELECT count(*) FROM events") == 0


def test_import_contacts_reports_every_bad_row(tmp_path: Path) -> None:
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("contact_id,timezone,email_consent\na,UTC,true\na,UTC,true\n"
                        "b,Nowhere/City,maybe\n", encoding="utf-8")
    result = cli("import-contacts", contacts, "--home", tmp_path / "ws")
    assert result.exit_code == 2
    text = "\n".join(error_lines(result))
    for fragment in ("row 2, column contact_id", "row 3, column timezone",
                     "row 3, column email_consent"):
        assert fragment in text
    store = tmp_path / "ws" / "store.duckdb"
    assert not store.exists() or count(store, "SELECT count(*) FROM contacts") == 0


def test_an_unreadable_data_file_is_one_line(tmp_path: Path) -> None:
    result = cli("ingest", tmp_path / "nope.csv", "--home", tmp_path / "ws")
    assert result.exit_code == 2
    (line,) = error_lines(result)
    assert line.startswith(f"error: {tmp_path / 'nope.csv'}: file not found")


@pytest.mark.slow
def test_ctrl_c_stops_the_runner_cleanly(home: Path) -> None:
    script = Path(sys.executable).with_name("mawb")
    if not script.exists():
        pytest.skip("console script not installed in this environment")
    process = subprocess.Popen(
        [str(script), "run", "lead_welcome_v1", "--every", "1h", "--home", str(home)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "tick 1 at" in first
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "Traceback" not in out + err
    assert "stopped (Ctrl-C)" in err
    assert count(home / "store.duckdb", "SELECT count(*) FROM enrollments") == 6
