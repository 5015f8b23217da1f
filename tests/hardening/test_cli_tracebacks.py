"""Issue item 5: every bad input the attack run turned into a traceback is one `error:` line.

Each case runs the real command in-process and requires exit code 1 (invalid flow) or 2
(unusable input), exactly one `error:` line naming the input, no traceback, and nothing
half-written (no stray flow version file, no store).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hardening_helpers import cli

from mawb.model import Flow


def flow_file(tmp: Path, name: str = "f", **changes: Any) -> Path:
    """A valid two-node flow with `changes` applied to its document (or to node params)."""
    flow = (Flow.new("probe").add("start", "behavioral_trigger", events=["page_view"])
            .add("mail", "email_send", subject="Hi", body="Hello").connect("start", "mail"))
    document = flow.to_dict()
    for key, value in changes.items():
        if key.startswith("start.") or key.startswith("mail."):
            node, param = key.split(".", 1)
            next(n for n in document["nodes"] if n["id"] == node)["params"][param] = value
        elif key == "frequency_cap":
            document["settings"]["frequency_cap"] = value
        else:
            document[key] = value
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(document), encoding="utf-8")  # json writes inf as Infinity
    return path


def delay_flow(tmp: Path, **params: Any) -> Path:
    flow = (Flow.new("delayed").add("start", "time_based_trigger", **params.pop("trigger", {}))
            .add("wait", "delay_action", **params)
            .add("mail", "email_send", subject="Hi", body="Hello")
            .connect("start", "wait").connect("wait", "mail"))
    return flow.save(tmp / "delayed.json")


def contacts_file(tmp: Path, text: str, name: str = "c.csv") -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def nested_jsonl(tmp: Path) -> Path:
    path = tmp / "deep.jsonl"
    path.write_text('{"contact_id": "c1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
                    encoding="utf-8")
    return path


def outside_flow(tmp: Path) -> str:
    """A flow version file where `flows/../../outside` resolves from the workspace."""
    (tmp / "ws" / "flows").mkdir(parents=True)
    Flow.new("outside").add("start", "manual_trigger").save(tmp / "outside" / "v1.json")
    return "../../outside"


Case = Callable[[Path], list[object]]
CASES: dict[str, Case] = {
    "within_days inf": lambda t: ["run", flow_file(t, **{"start.within_days": float("inf")}),
                                  "--once", "--home", t / "ws"],
    "within_days 1e300": lambda t: ["run", flow_file(t, **{"start.within_days": 1e300}),
                                    "--once", "--home", t / "ws"],
    "min_count 10^40": lambda t: ["run", flow_file(t, **{"start.min_count": 10**40}),
                                  "--once", "--home", t / "ws"],
    "max_messages 10^40": lambda t: ["run", flow_file(t, frequency_cap={
        "max_messages": 10**40, "per_days": 1}), "--once", "--home", t / "ws"],
    "flow version 3e9": lambda t: ["run", flow_file(t, version=3_000_000_000), "--once",
                                   "--home", t / "ws"],
    "flow param 10^40": lambda t: ["run", flow_file(t, params={"big": 10**40}), "--once",
                                   "--home", t / "ws"],
    "param override inf": lambda t: ["run", flow_file(t, params={"x": 1.0}), "--param",
                                     "x=1e999", "--once", "--home", t / "ws"],
    "unknown date_field": lambda t: ["run", delay_flow(t, days=1, trigger={
        "date_field": "no_such_date"}), "--once", "--home", t / "ws"],
    "unknown until_field": lambda t: ["run", delay_flow(t, until_field="no_such_field"),
                                      "--once", "--home", t / "ws"],
    "email_opens=abc": lambda t: ["import-contacts", contacts_file(
        t, "contact_id,email_opens\nc1,abc\n"), "--home", t / "ws"],
    "attributes=notjson": lambda t: ["import-contacts", contacts_file(
        t, "contact_id,attributes\nc1,notjson\n"), "--home", t / "ws"],
    "converted=maybe": lambda t: ["import-contacts", contacts_file(
        t, "contact_id,converted\nc1,maybe\n"), "--home", t / "ws"],
    "empty header name": lambda t: ["import-contacts", contacts_file(
        t, "contact_id,,email\nc1,x,a@x.io\n"), "--home", t / "ws"],
    "duplicate header": lambda t: ["import-contacts", contacts_file(
        t, "contact_id,email,email\nc1,a@x.io,b@x.io\n"), "--home", t / "ws"],
    "deeply nested jsonl": lambda t: ["import-contacts", nested_jsonl(t), "--home", t / "ws"],
    "10,000 columns": lambda t: ["import-contacts", contacts_file(
        t, "contact_id," + ",".join(f"c{i}" for i in range(10_000)) + "\nc1"
        + "," * 10_000 + "\n"), "--home", t / "ws"],
    "email with a comma": lambda t: ["import-contacts", contacts_file(
        t, 'contact_id,email\nc1,"a@x.io,b@y.io"\n'), "--home", t / "ws"],
    "email with a newline": lambda t: ["import-contacts", contacts_file(
        t, 'contact_id,email\nc1,"a@x.io\nBcc: b@y.io"\n'), "--home", t / "ws"],
    "compile --out an existing file": lambda t: ["compile", flow_file(t), "--out",
                                                 contacts_file(t, "x", "taken.txt")],
    "compile --out /dev/null": lambda t: ["compile", flow_file(t), "--out", "/dev/null"],
    "run --every 99999999999d": lambda t: ["run", "lead_welcome_v1", "--every",
                                           "99999999999d", "--home", t / "ws"],
    "simulate --days 1e9": lambda t: ["simulate", "lead_welcome_v1", "--synthetic", 5,
                                      "--days", "1e9"],
    "simulate --days inf": lambda t: ["simulate", "lead_welcome_v1", "--synthetic", 5,
                                      "--days", "inf"],
    "simulate --days nan": lambda t: ["simulate", "lead_welcome_v1", "--synthetic", 5,
                                      "--days", "nan"],
    "simulate --seed -1": lambda t: ["simulate", "lead_welcome_v1", "--synthetic", 5,
                                     "--seed", "-1"],
    "simulate --synthetic 10^12": lambda t: ["simulate", "lead_welcome_v1", "--synthetic",
                                             10**12, "--days", 1],
    "run a deployed id outside flows/": lambda t: ["run", outside_flow(t), "--once",
                                                   "--home", t / "ws"],
    "status of a path-like id": lambda t: ["status", "../x", "--home", t / "ws"],
    "step --tick-time garbage": lambda t: ["step", "--flow", "lead_welcome_v1", "--node",
                                           "_ingest", "--tick-time", "soon", "--home", t / "ws"],
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_error_line(name: str, tmp_path: Path) -> None:
    args = CASES[name](tmp_path)
    result = cli(*args)
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))
    assert result.exit_code in (1, 2), (result.exit_code, result.output)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    # Option values outside an option's range are refused by the command-line parser itself,
    # as a usage error naming the option (exit 2), before any command code runs.
    usage = result.exit_code == 2 and "Invalid value for '--" in result.stderr
    assert len(errors) == 1 or (usage and not errors), result.stderr
    assert not list((tmp_path / "ws" / "flows").rglob("*.json")), "a flow version was written"
    assert not list((tmp_path / "ws" / "flows").rglob("*.tmp")), "a half-written file is left"
