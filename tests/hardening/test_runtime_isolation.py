"""Issue item 4: a condition that only fails on real data fails that node's cohort, visibly.

These conditions validate (they are inside the allow-list) but DuckDB raises on the data. The
node's enrollments end `failed` with the node and error in exit_reason and node_log, its stage
is `failed` in `runs` with the error, and everything else in the tick goes on: messages queued
by earlier nodes are sent, later ticks are not blocked, and the CLI prints a `warning:` line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hardening_helpers import NOW, cli, contacts, rows, workspace

from mawb.engine import run_stage
from mawb.engine.workspace import StageFailed
from mawb.model import Flow
from mawb.validate import validate_flow

if TYPE_CHECKING:
    from pathlib import Path

LONG_SUM = "+".join(["1"] * 2400) + " > 0"  # under the 5,000-character limit
RUNTIME_FAILURES = {
    "cast text to int": "CAST(email AS INT) > 0",
    "text compared with a number": "email > 5",
    "number compared with text": "engagement_score = 'abc'",
    "unknown date part": "date_diff('fortnight', signup_date, current_date) > 1",
    "bad regular expression": "regexp_matches(email, '(')",
    "escape of two characters": "email LIKE 'x' ESCAPE 'ab'",
    "integer overflow": "abs(-9223372036854775808) > 0",
    "impossible date": "CAST('99999-99-99' AS DATE) < current_date",
}


def branching(condition: str) -> Flow:
    """trigger -> welcome email -> if(condition) -> yes/no emails."""
    return (Flow.new("fragile").add("start", "time_based_trigger", schedule="@once")
            .add("welcome", "email_send", subject="Welcome", body="Hello")
            .add("check", "if_condition", condition=condition)
            .add("yes", "email_send", subject="Yes", body="y")
            .add("no", "email_send", subject="No", body="n")
            .connect("start", "welcome").connect("welcome", "check")
            .connect("check", "yes", "true").connect("check", "no", "false"))


def population() -> object:
    frame = contacts(3, engagement_score=0.5)
    frame["signup_date"] = "2026-10-01"
    return frame


@pytest.mark.parametrize("name", list(RUNTIME_FAILURES))
def test_the_failing_node_fails_only_its_cohort(name: str, tmp_path: Path) -> None:
    ws = workspace(tmp_path, population())  # type: ignore[arg-type]
    flow = branching(RUNTIME_FAILURES[name])
    ws.deploy(flow)
    with pytest.warns(StageFailed, match="node check failed for 3 contact"):
        ws.tick(flow, NOW)
    # The welcome emails queued before the failure were still dispatched in the same tick.
    assert rows(ws, "SELECT subject, count(*) FROM messages GROUP BY 1") == [("Welcome", 3)]
    statuses = rows(ws, "SELECT status, exit_reason FROM enrollments")
    assert {status for status, _ in statuses} == {"failed"}
    assert all(reason.startswith("node check failed: ") for _, reason in statuses)
    logged = rows(ws, "SELECT node_id, reason FROM node_log WHERE event = 'failed'")
    assert len(logged) == 3 and {node for node, _ in logged} == {"check"}
    (status, error), = rows(ws, "SELECT status, error FROM runs WHERE stage = 'check'")
    assert status == "failed" and error and "Traceback" not in error
    assert rows(ws, "SELECT count(*) FROM tokens") == [(0,)]  # nobody stuck at the node
    ws.tick(flow, NOW.replace(hour=10))  # the next tick has nothing left to fail on
    assert rows(ws, "SELECT count(*) FROM runs WHERE status = 'failed'") == [(1,)]


def test_other_flows_and_later_contacts_keep_moving(tmp_path: Path) -> None:
    ws = workspace(tmp_path, population())  # type: ignore[arg-type]
    bad, good = branching("CAST(email AS INT) > 0"), branching("engagement_score > 0.1")
    good = good.model_copy(update={"id": "sturdy"})
    for flow in (bad, good):
        ws.deploy(flow)
    with pytest.warns(StageFailed):
        ws.tick(bad, NOW)
    ws.tick(good, NOW)
    assert rows(ws, "SELECT flow_id, subject, count(*) FROM messages GROUP BY ALL ORDER BY ALL"
                ) == [("fragile", "Welcome", 3), ("sturdy", "Welcome", 3), ("sturdy", "Yes", 3)]


def test_a_condition_too_deep_for_duckdb_is_refused_then_isolated(tmp_path: Path) -> None:
    """Validation bounds the depth (DuckDB's own limit is about 1,000); a saved version that
    skipped validation still fails only its node."""
    flow = branching(LONG_SUM)
    found = [(d.node_id, d.field) for d in validate_flow(flow).errors]
    assert found == [("check", "params.condition")]
    ws = workspace(tmp_path, population())  # type: ignore[arg-type]
    with ws.connection() as connection, pytest.warns(StageFailed, match="node check failed"):
        for stage in ("_ingest", "start", "welcome", "check", "yes", "no", "_dispatch"):
            run_stage(connection, flow, stage, NOW)
    assert rows(ws, "SELECT subject, count(*) FROM messages GROUP BY 1") == [("Welcome", 3)]
    assert rows(ws, "SELECT DISTINCT status FROM enrollments") == [("failed",)]


@pytest.mark.parametrize("goal", ["CAST(email AS INT) > 0", "email > 5"])
def test_a_failing_goal_is_skipped_and_dispatch_goes_on(goal: str, tmp_path: Path) -> None:
    ws = workspace(tmp_path, population())  # type: ignore[arg-type]
    flow = branching("engagement_score > 0.1")
    flow.settings.goal = goal
    ws.deploy(flow)
    with pytest.warns(StageFailed, match="goal failed"):
        ws.tick(flow, NOW)
    assert rows(ws, "SELECT count(*) FROM messages") == [(6,)]
    (status, error), = rows(ws, "SELECT status, error FROM runs WHERE stage = '_goal'")
    assert status == "failed" and error
    assert rows(ws, "SELECT count(*) FROM runs WHERE stage = '_dispatch' AND status = 'done'"
                ) == [(1,)]


def test_run_prints_a_warning_line_not_a_traceback(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    csv = tmp_path / "contacts.csv"
    population().to_csv(csv, index=False)  # type: ignore[attr-defined]
    assert cli("import-contacts", csv, "--home", home).exit_code == 0
    flow_file = branching("CAST(email AS INT) > 0").save(tmp_path / "fragile.json")
    result = cli("run", flow_file, "--once", "--home", home)
    assert "Traceback" not in result.output
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "node check failed for 3 contact(s)" in warnings[0]


def test_simulate_prints_a_warning_line_not_a_traceback(tmp_path: Path) -> None:
    csv = tmp_path / "contacts.csv"
    population().to_csv(csv, index=False)  # type: ignore[attr-defined]
    flow_file = branching("regexp_matches(email, '(')").save(tmp_path / "fragile.json")
    result = cli("simulate", flow_file, "--contacts", csv, "--days", 2)
    assert "Traceback" not in result.output
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "node check failed" in warnings[0]


STATIC = ["text compared with a number", "number compared with text", "unknown date part",
          "bad regular expression", "integer overflow", "impossible date"]


@pytest.mark.parametrize("name", STATIC)
def test_what_the_column_types_decide_is_refused_before_deploy(name: str, tmp_path: Path) -> None:
    """Probed against the workspace's column types (one typed all-NULL row, no data read)."""
    home = tmp_path / "ws"
    csv = tmp_path / "contacts.csv"
    population().to_csv(csv, index=False)  # type: ignore[attr-defined]
    assert cli("import-contacts", csv, "--home", home).exit_code == 0
    flow_file = branching(RUNTIME_FAILURES[name]).save(tmp_path / "fragile.json")
    result = cli("run", flow_file, "--once", "--home", home)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "node check · params.condition: fails for the workspace's column types" in (
        result.stderr)
    assert not (home / "flows").exists() or not list((home / "flows").rglob("*.json"))
