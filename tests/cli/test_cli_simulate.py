"""`mawb simulate`: exact counts by hand, the --json contract, and clean errors.

`ten_contacts.csv` holds six leads (c01-c06) and four others. lead_welcome_v1 enrolls
`lifecycle = 'lead'`, emails welcome and guide, waits five days and sends the webinar email to
`engagement_score > engagement_threshold` (0.7): c01 (0.9), c02 (0.8) and c05 (0.95). c05 is
unsubscribed and c06 has no email consent, so their emails are suppressed, not sent: welcome
4 + guide 4 + webinar 2 = 10 emails. With the threshold at 0.85 only c01 and c05 qualify.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from cli_helpers import BROKEN, TEN_CONTACTS, cli, cli_json, error_lines

import mawb

if TYPE_CHECKING:
    from pathlib import Path

FUNNEL_KEYS = {"entered", "completed", "waiting", "failed", "converted"}
WELCOME_PATH = ["start", "welcome", "wait_2d", "guide", "wait_3d", "engaged"]


def simulate_ten(*extra: object) -> dict:
    return cli_json("simulate", "lead_welcome_v1", "--contacts", TEN_CONTACTS, "--days", 14,
                     "--responses", "none", *extra)


def test_responses_none_counts_are_exact() -> None:
    data = simulate_ten()
    funnel = data["funnel"]
    assert list(funnel) == [*WELCOME_PATH, "webinar"]
    for node_id in WELCOME_PATH:
        assert funnel[node_id] == {"entered": 6, "completed": 6, "waiting": 0, "failed": 0,
                                   "converted": 0}, node_id
    assert funnel["webinar"]["entered"] == 3
    assert data["messages"] == {"email": 10, "sms": 0, "web_push": 0, "social": 0}
    assert data["summary"]["enrolled"] == 6
    assert data["summary"]["completed"] == 6
    assert data["summary"]["opens"] == 0


def test_a_param_changes_the_branch_exactly() -> None:
    data = simulate_ten("--param", "engagement_threshold=0.85")
    assert data["params"] == {"engagement_threshold": 0.85}
    assert data["funnel"]["webinar"]["entered"] == 2
    assert data["messages"]["email"] == 9


def test_a_short_run_leaves_contacts_waiting() -> None:
    data = simulate_ten("--days", 1)  # the later --days wins: stopped inside wait_2d
    assert data["funnel"]["wait_2d"] == {"entered": 6, "completed": 0, "waiting": 6,
                                         "failed": 0, "converted": 0}
    assert data["funnel"]["guide"]["entered"] == 0
    assert data["messages"]["email"] == 4


def test_json_shape_and_same_seed_same_result() -> None:
    args = ("simulate", "lead_welcome_v1", "--synthetic", 200, "--days", 3, "--seed", 5)
    first, second = cli_json(*args), cli_json(*args)
    assert first == second
    assert {"flow", "version", "params", "seed", "ticks", "summary", "funnel",
            "messages"} <= set(first)
    assert set(first["messages"]) == {"email", "sms", "web_push", "social"}
    for counts in first["funnel"].values():
        assert set(counts) == FUNNEL_KEYS
        assert all(isinstance(value, int) for value in counts.values())
    assert first["summary"]["opens"] > 0, "the response model should open some emails"
    assert first["funnel"]["welcome"]["entered"] > 0


def test_human_output_is_a_funnel_table() -> None:
    result = cli("simulate", "lead_welcome_v1", "--contacts", TEN_CONTACTS, "--days", 14,
                  "--responses", "none")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["node", "entered", "completed", "waiting", "failed",
                                "converted"]
    assert lines[2].split() == ["start", "6", "6", "0", "0", "0"]
    assert lines[8].split() == ["webinar", "3", "3", "0", "0", "0"]
    assert "email 10" in result.stdout


def test_history_backtest_uses_recorded_events(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text("event_id,contact_id,name,ts\n"
                      "e1,c03,email_open,2026-11-01T10:00:00Z\n", encoding="utf-8")
    data = cli_json("simulate", "lead_welcome_v1", "--contacts", TEN_CONTACTS, "--events",
                     events, "--days", 2, "--responses", "history")
    assert data["funnel"]["start"]["entered"] == 6
    assert data["summary"]["opens"] == 0  # recorded behaviour is not simulated behaviour


def test_a_bad_contacts_row_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "contacts.csv"
    bad.write_text("contact_id,timezone,engagement_score\nc1,UTC,0.5\nc2,Mars/Base,0.5\n"
                   "c3,UTC,lots\n", encoding="utf-8")
    result = cli("simulate", "lead_welcome_v1", "--contacts", bad, "--days", 1)
    assert result.exit_code == 2
    lines = error_lines(result)
    assert lines[0].startswith(f"error: {bad}: row ")
    assert "nothing was imported" in lines[0]
    text = "\n".join(lines)
    assert "row 2, column timezone" in text
    assert "row 3, column engagement_score" in text


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--days", "1"], "give exactly one of --contacts CSV or --synthetic N"),
        (["--synthetic", "5", "--contacts", "x.csv"], "give exactly one of"),
        (["--synthetic", "5", "--param", "nope=1"], "--param nope: flow lead_welcome_v1 has no"),
        (["--synthetic", "5", "--param", "engagement_threshold"], "expected name=value"),
        (["--contacts", "does-not-exist.csv"], "file not found"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], fragment: str) -> None:
    result = cli("simulate", "lead_welcome_v1", *args)
    assert result.exit_code == 2
    (line,) = error_lines(result)
    assert line.startswith("error: ")
    assert fragment in line


def test_an_invalid_flow_exits_1_with_its_diagnostics() -> None:
    result = cli("simulate", BROKEN / "unreachable.json", "--synthetic", 5, "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = error_lines(result)
    assert any("[unreachable]" in line and "node " in line for line in lines)
    assert lines[-1].startswith(f"error: {BROKEN / 'unreachable.json'}: invalid flow")


def test_an_unknown_flow_name_is_one_line() -> None:
    result = cli("simulate", "no_such_template", "--synthetic", 5)
    assert result.exit_code == 2
    (line,) = error_lines(result)
    assert line == ("error: no_such_template: no such flow file or template id "
                    "(see mawb templates list)")


def test_the_json_is_the_only_stdout() -> None:
    result = cli("simulate", "lead_welcome_v1", "--contacts", TEN_CONTACTS, "--days", 3,
                  "--responses", "none", "--json")
    assert json.loads(result.stdout)["flow"] == "lead_welcome_v1"


def test_a_condition_on_a_missing_attribute_is_a_diagnostic(tmp_path: Path) -> None:
    flow = mawb.load_template("lead_welcome_v1")
    flow.node("engaged").params["condition"] = "karma > 3"
    path = flow.save(tmp_path / "karma.json")
    result = cli("simulate", path, "--contacts", TEN_CONTACTS, "--responses", "none")
    assert result.exit_code == 1
    lines = error_lines(result)
    assert (f"{path}: error [unknown_column] node engaged · params.condition: contacts have "
            "no attribute 'karma'") in lines
