"""Exactly once under kill -9: a runner killed anywhere and restarted ends where an
uninterrupted one does, having lost, moved and sent nothing twice.

A real runner process (`crash_runner.py`, forked from a warm server so dozens of runs fit in
seconds) ticks a flow with email, SMS, data updates, a fork and an `all` merge, a delay, a
condition wait, quiet hours and a frequency cap over a synthetic population. Each run is
killed with SIGKILL one to three times — at a seeded random SQL statement (the runner kills
itself right after it, so the point is reproducible) or after a seeded random delay (which can
land inside DuckDB's own commit) — then restarted until it finishes. The store must then equal
the uninterrupted run on the same input and virtual clock, with unique idempotency keys, one
enrollment per contact, every stage of every tick recorded once and a node log that accounts
for every token.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from engine_harness import scratch_home
from support.reference import engine_result

from mawb.data import synthetic_contacts
from mawb.engine import Workspace
from mawb.model import Flow

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).with_name("crash_runner.py")
START = datetime(2026, 11, 2, 6, 0)
END = START + timedelta(days=3)
RUNS = 24
BUDGET_SECONDS = 40  # stop early (after at least MIN_RUNS) on a starved machine
MIN_RUNS = 6
SEED = 20261102


def crash_flow() -> Flow:
    flow = Flow.new("crash_demo", params={"hot": 60}, settings={
        "quiet_hours": {"start": "21:00", "end": "08:00"},
        "frequency_cap": {"max_messages": 2, "per_days": 1, "mode": "hold"},
    })
    flow.add("start", "time_based_trigger", schedule="@once",
             audience="lifecycle IN ('lead', 'mql')")
    flow.add("fork", "parallel_execution")
    flow.add("welcome", "email_send", subject="Welcome, {{ first_name | default: 'there' }}",
             body="Hi {{ first_name }} at {{ company }}")
    flow.add("bump", "data_update", increment={"score": 5})
    flow.add("text", "sms_send", body="Hello {{ first_name | default: 'there' }}")
    flow.add("join", "merge_branches", mode="all")
    flow.add("wait", "delay_action", hours=20)
    flow.add("check", "condition_check", condition="score > :hot", timeout_days=1)
    flow.add("hot", "email_send", subject="A demo?", body="{{ first_name }}, shall we talk?")
    flow.add("cold", "data_update", set={"tag": "cold"})
    for source, target, branch in [
        ("start", "fork", None), ("fork", "welcome", None), ("fork", "bump", None),
        ("bump", "text", None), ("welcome", "join", None), ("text", "join", None),
        ("join", "wait", None), ("wait", "check", None), ("check", "hot", "met"),
        ("check", "cold", "timeout"),
    ]:
        flow.connect(source, target, branch)
    return flow


class RunnerServer:
    """The warm `crash_runner.py serve` process: forks runners, reports their exits."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(RUNNER), "serve"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1)
        self.statements: list[int] = []
        self._read("ready")

    def _read(self, prefix: str) -> list[str]:
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            assert line, "the runner server died"
            words = line.split()
            if words[0] == "statements":
                self.statements.append(int(words[1]))
            assert words[0] != "error", f"the runner failed: {line}"
            if words[0] == prefix:
                return words

    def start(self, home: Path, kill_at: int | None) -> int:
        assert self.process.stdin is not None
        self.process.stdin.write(f"run {home} crash_demo {START.isoformat()} "
                                 f"{END.isoformat()} {kill_at or '-'}\n")
        return int(self._read("started")[1])

    def wait(self, pid: int) -> int:
        assert self.process.stdin is not None
        self.process.stdin.write(f"wait {pid}\n")
        return int(self._read("exited")[2])

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


@dataclass
class Outcome:
    kills: list[str] = field(default_factory=list)
    restarts: int = 0


@pytest.fixture(scope="module")
def server() -> Iterator[RunnerServer]:
    runner = RunnerServer()
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def pristine() -> Iterator[Path]:
    """A workspace with contacts imported and the flow deployed, copied for every run."""
    with scratch_home() as home:
        workspace = Workspace(Path(home) / "pristine")
        workspace.import_contacts(synthetic_contacts(100, seed=7))
        workspace.deploy(crash_flow())
        yield workspace.home


def _fresh(pristine: Path, target: Path) -> Path:
    shutil.copytree(pristine, target)
    return target


def _run_with_kills(server: RunnerServer, home: Path, rng: random.Random,
                    statements: int, seconds: float) -> Outcome:
    """Kill 1-3 times (statement hook or timer), then run to the end."""
    outcome = Outcome()
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.7:
            point = rng.randint(1, statements)
            pid = server.start(home, point)
            label = f"statement {point}"
        else:
            delay = rng.uniform(0.0, seconds)
            pid = server.start(home, None)
            time.sleep(delay)
            with contextlib.suppress(ProcessLookupError):  # it may have finished already
                os.kill(pid, signal.SIGKILL)
            label = f"after {delay:.2f}s"
        code = server.wait(pid)
        outcome.restarts += 1
        if code == -signal.SIGKILL:
            outcome.kills.append(label)
        else:
            assert code == 0, f"runner exited with {code}"
    pid = server.start(home, None)
    assert server.wait(pid) == 0
    return outcome


def _store(home: Path) -> Any:
    workspace = Workspace(home)
    return engine_result(workspace, workspace.load_flow("crash_demo"))


def _invariants(home: Path) -> None:
    """Checks that hold for any store, independent of the baseline."""
    workspace = Workspace(home)
    with workspace.connection(read_only=True) as connection:
        def one(sql: str) -> Any:
            row = connection.execute(sql).fetchone()
            return row[0] if row else None

        assert one("SELECT count(*) - count(DISTINCT idempotency_key) FROM outbox_all") == 0
        assert one("SELECT count(*) - count(DISTINCT idempotency_key) FROM messages") == 0
        assert one("SELECT count(*) FROM messages WHERE idempotency_key NOT IN "
                   "(SELECT idempotency_key FROM outbox_all WHERE status = 'sent')") == 0
        assert one("SELECT count(*) - count(DISTINCT contact_id) FROM enrollments") == 0
        assert one("SELECT count(*) - count(DISTINCT token_id) FROM tokens") == 0
        assert one("SELECT count(*) FROM (SELECT tick_time, stage FROM runs "
                   "GROUP BY ALL HAVING count(*) > 1)") == 0
        # Every token that entered a node completed there, is still there, or converted.
        unbalanced = one("""
            WITH log AS (
                SELECT enrollment_id, node_id,
                       count(*) FILTER (event = 'entered') AS entered,
                       count(*) FILTER (event IN ('completed', 'converted')) AS left_node
                FROM node_log GROUP BY ALL),
            here AS (SELECT enrollment_id, node_id, count(*) AS present FROM tokens GROUP BY ALL)
            SELECT count(*) FROM log LEFT JOIN here USING (enrollment_id, node_id)
            WHERE entered <> left_node + coalesce(present, 0)""")
        assert unbalanced == 0


def test_killed_runners_end_exactly_where_an_uninterrupted_run_does(
        server: RunnerServer, pristine: Path) -> None:
    with scratch_home() as scratch:
        baseline_home = _fresh(pristine, Path(scratch) / "baseline")
        started = time.perf_counter()
        pid = server.start(baseline_home, None)
        assert server.wait(pid) == 0
        seconds = time.perf_counter() - started
        statements = server.statements[-1]
        baseline = _store(baseline_home)
        _invariants(baseline_home)
        assert baseline.messages, "the flow should send messages"
        assert {row[3] for row in baseline.messages} == {"email", "sms"}
        assert any(row[5] != "sent" for row in baseline.outbox), "rules should hold some"

        rng = random.Random(SEED)
        kills: list[str] = []
        runs = 0
        budget = time.monotonic() + BUDGET_SECONDS
        for run in range(RUNS):
            if time.monotonic() > budget and run >= MIN_RUNS:
                break
            runs += 1
            home = _fresh(pristine, Path(scratch) / f"run{run}")
            outcome = _run_with_kills(server, home, rng, statements, seconds)
            kills += outcome.kills
            _invariants(home)
            got = _store(home)
            for name in ("enrollments", "tokens", "outbox", "messages", "node_log"):
                assert getattr(got, name) == getattr(baseline, name), (
                    f"run {run} (killed at {outcome.kills}): {name} differ")
            assert got.attributes(["score", "tag"]) == baseline.attributes(["score", "tag"])
            shutil.rmtree(home)
    print(f"\ncrash test: {runs} runs, {len(kills)} kills over {statements} statements "
          f"per full run: {', '.join(kills)}")
    assert len(kills) >= MIN_RUNS
