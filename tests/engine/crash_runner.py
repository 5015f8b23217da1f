"""A runner process for the kill -9 test: ticks a deployed flow to the end of its horizon.

`python crash_runner.py HOME FLOW_ID START END [KILL_AT]` opens the workspace, finds where
the previous (possibly killed) runner stopped from the `runs` table, and ticks on the virtual
clock (`next_due`) until END. With KILL_AT = N it sends itself SIGKILL right after its N-th
SQL statement: a deterministic kill point anywhere in a tick (inside a stage's transaction,
between COMMIT and the next BEGIN, in the middle of dispatch...). It prints the number of
statements it ran, so the test knows the range of kill points.

`python crash_runner.py serve` imports everything once and then forks one runner per
`run ...` line read from stdin, reporting `started PID` and, when the child ends,
`exited PID STATUS` (negative STATUS = killed by that signal). Importing pandas, DuckDB and
mawb takes seconds; forking a warm process keeps many kill runs fast while every runner is
still a real process that the test kills with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime
from typing import Any

import mawb.engine.workspace as workspace_module
from mawb.engine import DISPATCH, Workspace
from mawb.engine.store import connect


class _KillingConnection:
    """Forwards to a DuckDB connection, counting statements; SIGKILLs itself at the N-th."""

    count = 0
    kill_at: int | None = None

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def execute(self, *args: Any) -> Any:
        result = self._connection.execute(*args)
        _KillingConnection.count += 1
        if _KillingConnection.count == _KillingConnection.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def _connect(*args: Any, **kwargs: Any) -> Any:
    return _KillingConnection(connect(*args, **kwargs))


def resume_time(workspace: Workspace, flow_id: str, start: datetime) -> datetime | None:
    """The tick to run next: an unfinished tick again, else the one after the last."""
    flow = workspace.load_flow(flow_id)
    with workspace.connection() as connection:
        row = connection.execute(
            "SELECT max(tick_time) FROM runs WHERE flow_id = ? AND version = ?",
            [flow.id, flow.version],
        ).fetchone()
        last = row[0] if row else None
        if last is None:
            return start
        finished = connection.execute(
            "SELECT count(*) FROM runs WHERE flow_id = ? AND version = ? AND tick_time = ? "
            "AND stage = ?", [flow.id, flow.version, last, DISPATCH],
        ).fetchone()
    if not (finished and finished[0]):
        return last
    return workspace.next_due(flow, last)


def run(home: str, flow_id: str, start: datetime, end: datetime,
        kill_at: int | None = None) -> int:
    """Tick from where the store says we are until `end`; returns statements executed."""
    workspace_module.connect = _connect  # type: ignore[assignment]
    _KillingConnection.count, _KillingConnection.kill_at = 0, kill_at
    workspace = Workspace(home)
    flow = workspace.load_flow(flow_id)
    with workspace.session():
        now = resume_time(workspace, flow_id, start)
        while now is not None and now <= end:
            workspace.tick(flow, now)
            now = workspace.next_due(flow, now)
    return _KillingConnection.count


def _run_from(words: list[str]) -> int:
    home, flow_id, start, end = words[:4]
    kill_at = int(words[4]) if len(words) > 4 and words[4] != "-" else None
    return run(home, flow_id, datetime.fromisoformat(start), datetime.fromisoformat(end),
               kill_at)


def _warm_up() -> None:
    """Run a tiny flow once so lazy imports and DuckDB's extensions are loaded before forking.

    Every connection is closed again, so the children inherit no open database."""
    import tempfile

    import pandas as pd

    from mawb.model import Flow

    flow = (Flow.new("warm_up").add("start", "time_based_trigger", schedule="@once")
            .add("mail", "email_send", subject="Hi {{ first_name }}", body="Hello")
            .add("wait", "delay_action", hours=1, at_local_time="09:00")
            .connect("start", "mail").connect("mail", "wait"))
    with tempfile.TemporaryDirectory() as home:
        workspace = Workspace(home)
        workspace.import_contacts(pd.DataFrame({
            "contact_id": ["w1"], "email": ["w1@example.com"], "first_name": ["Wu"],
            "timezone": ["Europe/Berlin"], "email_consent": [True]}))
        workspace.deploy(flow)
        moment = datetime(2026, 1, 1, 9)
        workspace.tick(flow, moment)
        workspace.next_due(flow, moment)


def serve() -> None:
    """Fork a runner per `run HOME FLOW START END [KILL_AT]` line; report pids and exits."""
    _warm_up()
    print("ready", flush=True)
    children: set[int] = set()
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "run":
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    print(f"statements {_run_from(words[1:])}", flush=True)
                except BaseException as error:  # report, never fall back into the loop
                    print(f"error {error!r}", flush=True)
                    code = 1
                os._exit(code)
            children.add(pid)
            print(f"started {pid}", flush=True)
        elif words[0] == "wait":
            pid, status = os.waitpid(int(words[1]), 0)
            code = os.waitstatus_to_exitcode(status)
            children.discard(pid)
            print(f"exited {pid} {code}", flush=True)
    for pid in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve()
    else:
        print(f"statements {_run_from(sys.argv[1:])}", flush=True)
        sys.exit(0)
