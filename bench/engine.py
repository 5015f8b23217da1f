"""Benchmark: the set-based engine at scale, against the reference interpreter and a raw floor.

The engine's promise is that a tick costs a handful of set-based statements per node whatever
the population, so a million contacts run through a two-week flow in seconds. This script
measures, in one run and on the same machine (every figure in its own child process, so peak
RSS is that scenario's alone):

(a) `lead_welcome_v1` over 14 virtual days for 1M synthetic contacts with pure flow logic
    (no simulated responses, like `mawb simulate --responses none`): wall time of the ticks
    (including the final checkpoint), import time and peak RSS. Targets: <= 30 s, <= 4 GB.
(b) engine vs the per-contact reference interpreter (`tests/support/reference.py`) on 100k
    contacts, both measured at that size (the reference takes minutes: its enrollment step
    grows faster than linearly, so scaling a small run up would flatter it). Target: >= 50x.
(c) engine vs the raw floor: the bare DuckDB statements that make the same state transitions
    (enrollments, tokens, node log, outbox, messages) for this one flow, hand-written with the
    flow known in advance and no engine around them. Both end with the same row counts
    (checked). Target: within 3x.
(d) scaling of the engine's wall time from 100k to 1M (and 5M with --with-5m).

    python bench/engine.py [--quick] [--with-5m] [--seed 0]

`--quick` runs small sizes in seconds (a smoke test of the script, not a measurement).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

FLOW_ID = "lead_welcome_v1"
DAYS = 14


# -- scenarios (each runs in its own child process) -------------------------------------------
def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _epoch() -> datetime:
    from mawb.data import DEMO_EPOCH

    return DEMO_EPOCH.replace(tzinfo=None)


def scenario_engine(size: int, seed: int) -> dict[str, Any]:
    """Import `size` contacts and tick the flow over DAYS on the virtual clock."""
    from mawb.data import synthetic_contacts
    from mawb.engine import Workspace
    from mawb.templates import load_template

    flow = load_template(FLOW_ID)
    contacts = synthetic_contacts(size, seed=seed)
    with tempfile.TemporaryDirectory(prefix="mawb-bench-") as home:
        workspace = Workspace(home)
        with workspace.session():
            started = time.perf_counter()
            workspace.import_contacts(contacts)
            workspace.deploy(flow)
            imported = time.perf_counter()
            now: datetime | None = _epoch()
            end = _epoch() + timedelta(days=DAYS)
            ticks = 0
            while now is not None and now <= end:
                workspace.tick(flow, now)
                ticks += 1
                now = workspace.next_due(flow, now)
        finished = time.perf_counter()  # the session's close includes the checkpoint
        counts = _counts(workspace.store_path())
    return {"import_s": imported - started, "run_s": finished - imported, "ticks": ticks,
            "rss_mb": _rss_mb(), "counts": counts}


def scenario_reference(size: int, seed: int) -> dict[str, Any]:
    """The same flow through the per-contact reference interpreter."""
    from mawb.data import synthetic_contacts
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test support
    from support.reference import Reference

    from mawb.templates import load_template

    flow = load_template(FLOW_ID)
    contacts = synthetic_contacts(size, seed=seed)
    started = time.perf_counter()
    reference = Reference(flow, contacts)
    now: datetime | None = _epoch()
    end = _epoch() + timedelta(days=DAYS)
    while now is not None and now <= end:
        reference.tick(now)
        now = reference.next_due(now)
    result = reference.result()
    return {"run_s": time.perf_counter() - started, "rss_mb": _rss_mb(),
            "counts": {"messages": len(result.messages), "node_log": len(result.node_log)}}


def scenario_raw(size: int, seed: int) -> dict[str, Any]:
    """The raw floor: the same transitions as hand-written statements (see module doc)."""
    from mawb.data import synthetic_contacts
    from mawb.engine import Workspace
    from mawb.engine.store import connect
    from mawb.templates import load_template

    flow = load_template(FLOW_ID)
    contacts = synthetic_contacts(size, seed=seed)
    with tempfile.TemporaryDirectory(prefix="mawb-bench-") as home:
        workspace = Workspace(home)
        workspace.import_contacts(contacts)
        connection = connect(workspace.store_path())
        started = time.perf_counter()
        _raw_ticks(connection, flow)
        connection.close()
        finished = time.perf_counter()
        counts = _counts(workspace.store_path())
    return {"run_s": finished - started, "rss_mb": _rss_mb(), "counts": counts}


def _counts(path: Any) -> dict[str, Any]:
    from mawb.engine.store import connect

    connection = connect(path, read_only=True)
    try:
        def scalar(sql: str) -> Any:
            row = connection.execute(sql).fetchone()
            return row[0] if row else None

        return {
            "enrollments": scalar("SELECT count(*) FROM enrollments WHERE status = 'completed'"),
            "messages": scalar("SELECT count(*) FROM messages"),
            "outbox": dict(connection.execute(
                "SELECT status, count(*) FROM outbox_all GROUP BY 1 ORDER BY 1").fetchall()),
            "node_log": scalar("SELECT count(*) FROM node_log"),
            "tokens": scalar("SELECT count(*) FROM tokens"),
        }
    finally:
        connection.close()


# -- the raw floor ---------------------------------------------------------------------------
def _raw_ticks(connection: Any, flow: Any) -> None:
    """lead_welcome_v1 as bare statements: three ticks (day 0, 2 and 5), one transaction each."""
    from mawb.engine.render import liquid_to_sql
    from mawb.engine.store import contact_column_names

    columns = contact_column_names(connection)

    def text(node_id: str, name: str) -> str:
        rendered = liquid_to_sql(str(flow.node(node_id).params[name]), columns)
        assert rendered is not None, "lead_welcome_v1 templates render in SQL"
        return rendered

    t0 = _epoch()
    t1, t2 = t0 + timedelta(days=2), t0 + timedelta(days=5)
    connection.execute("BEGIN")
    connection.execute(
        "CREATE TEMP TABLE entering AS SELECT nextval('enrollment_seq') AS enrollment_id, "
        "contact_id FROM contacts WHERE lifecycle = 'lead'")
    connection.execute(
        "INSERT INTO enrollments SELECT enrollment_id, contact_id, ?, 1, 'start', 'active', ?, "
        "NULL, NULL, 1 FROM entering", [FLOW_ID, t0])
    _raw_log(connection, "entering", t0, [
        ("start", "entered", None, "enrolled"), ("start", "completed", "out", None),
        ("welcome", "entered", None, "start"), ("welcome", "completed", "out", None),
        ("wait_2d", "entered", None, "welcome"), ("wait_2d", "waiting", None, None)])
    connection.execute(
        "INSERT INTO tokens SELECT nextval('token_seq'), enrollment_id, contact_id, ?, 1, "
        "'wait_2d', 'welcome', ?, ?, NULL, 0, 'waiting' FROM entering", [FLOW_ID, t0, t1])
    _raw_send(connection, "entering", "welcome", text("welcome", "subject"),
              text("welcome", "body"), t0)
    connection.execute("COMMIT")

    connection.execute("BEGIN")
    connection.execute("CREATE OR REPLACE TEMP TABLE due AS SELECT * FROM tokens "
                       "WHERE node_id = 'wait_2d' AND wake_at <= ?", [t1])
    _raw_log(connection, "due", t1, [
        ("wait_2d", "completed", "out", None), ("guide", "entered", None, "wait_2d"),
        ("guide", "completed", "out", None), ("wait_3d", "entered", None, "guide"),
        ("wait_3d", "waiting", None, None)])
    connection.execute(
        "UPDATE tokens SET node_id = 'wait_3d', via = 'guide', arrived_at = ?, wake_at = ? "
        "WHERE node_id = 'wait_2d' AND wake_at <= ?", [t1, t2, t1])
    _raw_send(connection, "due", "guide", text("guide", "subject"), text("guide", "body"), t1)
    connection.execute("COMMIT")

    connection.execute("BEGIN")
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE due AS SELECT t.*, coalesce(c.engagement_score > ?, "
        "false) AS engaged FROM tokens t JOIN contacts c USING (contact_id) "
        "WHERE t.node_id = 'wait_3d' AND t.wake_at <= ?",
        [flow.params["engagement_threshold"], t2])
    _raw_log(connection, "due", t2, [
        ("wait_3d", "completed", "out", None), ("engaged", "entered", None, "wait_3d")])
    connection.execute(
        "INSERT INTO node_log SELECT ?, ?, 1, enrollment_id, contact_id, 'engaged', "
        "'completed', CASE WHEN engaged THEN 'true' ELSE 'false' END, NULL FROM due",
        [t2, FLOW_ID])
    connection.execute("CREATE OR REPLACE TEMP TABLE engaged AS SELECT * FROM due WHERE engaged")
    _raw_log(connection, "engaged", t2, [
        ("webinar", "entered", None, "engaged"), ("webinar", "completed", "out", None)])
    _raw_send(connection, "engaged", "webinar", text("webinar", "subject"),
              text("webinar", "body"), t2)
    connection.execute("DELETE FROM tokens WHERE token_id IN (SELECT token_id FROM due)")
    connection.execute(
        "UPDATE enrollments SET status = 'completed', exited_at = ?, exit_reason = 'end of path' "
        "WHERE enrollment_id IN (SELECT enrollment_id FROM due)", [t2])
    connection.execute("COMMIT")


def _raw_log(connection: Any, source: str, now: datetime,
             rows: list[tuple[str, str, str | None, str | None]]) -> None:
    """One statement logging every transition of `rows` for every token in `source`."""
    values = ", ".join("(?, ?, ?, ?)" for _ in rows)
    connection.execute(
        f"INSERT INTO node_log SELECT ?, ?, 1, s.enrollment_id, s.contact_id, v.node_id, "
        f"v.event, v.branch, v.reason FROM {source} s, "
        f"(VALUES {values}) v(node_id, event, branch, reason)",
        [now, FLOW_ID, *[value for row in rows for value in row]])


def _raw_send(connection: Any, source: str, node_id: str, subject: str, body: str,
              now: datetime) -> None:
    """Outbox rows already decided (sent or suppressed by consent) and the sent messages."""
    blocked = ("coalesce(c.unsubscribed, false) OR coalesce(c.do_not_contact, false) "
               "OR NOT coalesce(c.email_consent, true)")
    connection.execute(
        "INSERT INTO outbox (idempotency_key, flow_id, version, contact_id, node_id, iteration, "
        "channel, recipient, subject, body, payload, status, attempts, error, provider_ref, "
        "created_at, not_before, sent_at) "
        f"SELECT ? || s.contact_id || ':' || ? || ':1:0', ?, 1, "
        f"s.contact_id, ?, 0, 'email', c.email, {subject}, {body}, NULL, "
        f"CASE WHEN {blocked} THEN 'suppressed' ELSE 'sent' END, "
        f"CASE WHEN {blocked} THEN 0 ELSE 1 END, NULL, NULL, ?, ?, "
        f"CASE WHEN {blocked} THEN NULL ELSE CAST(? AS TIMESTAMP) END "
        f"FROM {source} s JOIN contacts c USING (contact_id)",
        [f"{FLOW_ID}:1:", node_id, FLOW_ID, node_id, now, now, now])
    connection.execute(
        "INSERT INTO messages SELECT idempotency_key, flow_id, contact_id, node_id, channel, "
        "recipient, subject, body, sent_at, 'sandbox' FROM outbox "
        "WHERE node_id = ? AND status = 'sent'", [node_id])


SCENARIOS = {"engine": scenario_engine, "reference": scenario_reference, "raw": scenario_raw}


# -- driver ----------------------------------------------------------------------------------
def measure(kind: str, size: int, seed: int) -> dict[str, Any]:
    """Run one scenario in a fresh child process and return what it reported."""
    output = subprocess.run(
        [sys.executable, __file__, "--scenario", kind, "--size", str(size), "--seed", str(seed)],
        check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def _row(label: str, result: dict[str, Any], size: int) -> str:
    rate = size / result["run_s"] if result["run_s"] else float("inf")
    extra = f"  import {result['import_s']:.2f} s" if "import_s" in result else ""
    return (f"{label:<34} {size:>10,} {result['run_s']:>9.2f} s {rate:>12,.0f}/s "
            f"{result['rss_mb']:>8,.0f} MB{extra}")


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds")
    parser.add_argument("--with-5m", action="store_true", help="add 5M contacts to (d)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(SCENARIOS[args.scenario](args.size, args.seed), default=str))
        return
    big, mid = (20_000, 5_000) if args.quick else (1_000_000, 100_000)
    sizes = [mid, big] + ([5_000_000] if args.with_5m and not args.quick else [])
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load} at start (other work slows every row)")
    print(f"{'scenario':<34} {'contacts':>10} {'wall':>11} {'contacts/s':>14} {'peak RSS':>11}")
    engine = {}
    for size in sizes:
        engine[size] = measure("engine", size, args.seed)
        print(_row(f"engine ({DAYS} virtual days)", engine[size], size), flush=True)
    reference = measure("reference", mid, args.seed)
    print(_row("reference interpreter", reference, mid), flush=True)
    raw = measure("raw", big, args.seed)
    print(_row("raw floor (bare statements)", raw, big), flush=True)
    _report(engine, reference, raw, big, mid)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"load average at the end: {load}")


def _report(engine: dict[int, dict[str, Any]], reference: dict[str, Any],
            raw: dict[str, Any], big: int, mid: int) -> None:
    main_run = engine[big]
    assert raw["counts"] == main_run["counts"], (raw["counts"], main_run["counts"])
    assert reference["counts"]["messages"] == engine[mid]["counts"]["messages"]
    print()
    fits = main_run["run_s"] <= 30 and main_run["rss_mb"] <= 4096
    print(f"(a) {big:,} contacts, {DAYS} days: {main_run['run_s']:.1f} s for "
          f"{main_run['ticks']} ticks (+{main_run['import_s']:.1f} s import), peak RSS "
          f"{main_run['rss_mb'] / 1024:.2f} GB; messages {main_run['counts']['messages']:,}. "
          f"Target <= 30 s and 4 GB: {_verdict(fits)}")
    ratio = reference["run_s"] / engine[mid]["run_s"]
    print(f"(b) engine vs reference at {mid:,} (same messages): {engine[mid]['run_s']:.2f} s "
          f"vs {reference['run_s']:.1f} s -> {ratio:.0f}x. Target >= 50x: "
          f"{_verdict(ratio >= 50)}")
    floor = main_run["run_s"] / raw["run_s"]
    print(f"(c) engine vs raw floor at {big:,}: {main_run['run_s']:.2f} s vs "
          f"{raw['run_s']:.2f} s -> {floor:.2f}x (same row counts). Target <= 3x: "
          f"{_verdict(floor <= 3)}")
    sizes = sorted(engine)
    steps = ", ".join(
        f"{small:,} -> {large:,}: x{large / small:.0f} contacts, "
        f"x{engine[large]['run_s'] / engine[small]['run_s']:.1f} time"
        for small, large in itertools.pairwise(sizes))
    print(f"(d) scaling: {steps}")


if __name__ == "__main__":
    main()
