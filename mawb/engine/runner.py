"""The embedded runner: flows on the real clock, and who is where in them.

`mawb run` and `mawb status` (and the Monitor page) are thin shells over these functions,
so a notebook or a service can do the same without shelling out. The runner is the engine's
own `Workspace.tick` called at wall-clock time: a tick covers everything due up to now, so a
late or skipped tick only delays work, it never loses or repeats it.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mawb.engine.deliver import deliver, uses_connections
from mawb.engine.workspace import Workspace
from mawb.model import MESSAGE_CHANNELS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from mawb.model import Flow

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
CHANNELS = MESSAGE_CHANNELS


def parse_interval(text: str) -> timedelta:
    """`30s`, `5m`, `1h`, `1d` as a timedelta (ValueError naming the text otherwise)."""
    match = _INTERVAL.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"interval {text!r}: expected a positive number and a unit s, m, h "
                         "or d, e.g. 5m")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def workspace_at(home: Path, partitions: int | None = None) -> Workspace:
    """Open a workspace with the partition count of its manifest (`workspace.json`).

    A new workspace is created with `partitions` (default 1); for an existing one a
    `partitions` that disagrees with the manifest is refused (ManifestError names both and
    `mawb repartition`), never adopted."""
    return Workspace(home, partitions)


def utc_now() -> datetime:
    return datetime.now(UTC)


def run_on_clock(
    workspace: Workspace,
    flow: Flow,
    *,
    every: timedelta | None = None,
    max_ticks: int | None = None,
    params: dict[str, Any] | None = None,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    on_tick: Callable[[datetime, int], None] | None = None,
) -> int:
    """Tick `flow` at wall-clock time: once, or every `every` until `max_ticks` ticks.

    Ticks start on a fixed grid from the first one (no drift); grid points missed while a
    long tick ran are skipped, not caught up in a burst, since one tick does all that is due.
    A KeyboardInterrupt between ticks or
    inside one (whose open stage rolls back) propagates after the completed ticks are kept.
    Returns the number of completed ticks.
    """
    done = 0
    started = monotonic()
    while True:
        now = clock()
        workspace.tick(flow, now, params)
        if uses_connections(flow):  # then the dispatcher sends what the tick queued
            deliver(workspace, [flow.id])
        done += 1
        if on_tick is not None:
            on_tick(now, done)
        if every is None or (max_ticks is not None and done >= max_ticks):
            return done
        interval = every.total_seconds()
        elapsed = monotonic() - started
        sleep(max(0.0, (elapsed // interval + 1) * interval - elapsed))


def status(workspace: Workspace, flow: Flow) -> dict[str, Any]:
    """Who is where in `flow`: enrollments per status, per node waiting and due counts,
    messages per channel, outbox problems and the last tick, summed over partitions."""
    now = utc_now().replace(tzinfo=None)
    enrollments: dict[str, int] = {}
    waiting: dict[str, dict[str, Any]] = {}
    messages = dict.fromkeys(CHANNELS, 0)
    outbox: dict[str, int] = {}
    reasons: dict[str, int] = {}
    dead_letters: list[dict[str, Any]] = []
    last_tick: datetime | None = None
    for partition in range(workspace.partitions):
        with workspace.connection(partition, read_only=True) as connection:
            for state, count in connection.execute(
                "SELECT status, count(*) FROM enrollments WHERE flow_id = ? GROUP BY 1",
                [flow.id],
            ).fetchall():
                enrollments[state] = enrollments.get(state, 0) + int(count)
            for node_id, count, due, next_wake in connection.execute(
                "SELECT node_id, count(*), count(*) FILTER (wake_at IS NULL OR wake_at <= ?), "
                "min(wake_at) FILTER (wake_at > ?) FROM tokens WHERE flow_id = ? GROUP BY 1",
                [now, now, flow.id],
            ).fetchall():
                _add_waiting(waiting, node_id, int(count), int(due), next_wake)
            for channel, count in connection.execute(
                "SELECT channel, count(*) FROM messages WHERE flow_id = ? GROUP BY 1", [flow.id]
            ).fetchall():
                messages[channel] = messages.get(channel, 0) + int(count)
            for state, count in connection.execute(
                "SELECT status, count(*) FROM outbox_all WHERE flow_id = ? GROUP BY 1", [flow.id]
            ).fetchall():
                outbox[state] = outbox.get(state, 0) + int(count)
            _add_problems(connection, flow.id, reasons, dead_letters)
            row = connection.execute(
                "SELECT max(tick_time) FROM runs WHERE flow_id = ?", [flow.id]
            ).fetchone()
            if row and row[0] is not None:
                last_tick = max(last_tick, row[0]) if last_tick else row[0]
    return {
        "flow": flow.id,
        "versions": workspace.versions(flow.id),
        "last_tick": last_tick.isoformat() if last_tick else None,
        "enrollments": {"total": sum(enrollments.values()), **enrollments},
        "nodes": [_node_status(node.id, node.type, waiting.get(node.id)) for node in flow.nodes],
        "messages": messages,
        "outbox": outbox,
        "reasons": reasons,
        "dead_letters": sorted(dead_letters, key=lambda d: d["at"] or "", reverse=True)[:20],
    }


def _add_problems(connection: Any, flow_id: str, reasons: dict[str, int],
                  dead_letters: list[dict[str, Any]]) -> None:
    """Rows not sent, counted by `status:reason`, and the latest dead rows with their error."""
    for state, reason, count in connection.execute(
        "SELECT status, reason, count(*) FROM outbox_all WHERE flow_id = ? AND reason IS NOT NULL "
        "GROUP BY ALL", [flow_id],
    ).fetchall():
        label = f"{state}:{reason}"
        reasons[label] = reasons.get(label, 0) + int(count)
    for key, node_id, channel, attempts, reason, error, at in connection.execute(
        "SELECT idempotency_key, node_id, channel, attempts, reason, error, "
        "coalesce(lease_until, not_before) FROM outbox_all WHERE flow_id = ? AND status = 'dead' "
        "ORDER BY not_before DESC LIMIT 20", [flow_id],
    ).fetchall():
        dead_letters.append({"key": key, "node_id": node_id, "channel": channel,
                             "attempts": int(attempts or 0), "reason": reason, "error": error,
                             "at": at.isoformat() if at else None})


def _add_waiting(waiting: dict[str, dict[str, Any]], node_id: str, count: int, due: int,
                 next_wake: datetime | None) -> None:
    entry = waiting.setdefault(node_id, {"waiting": 0, "due": 0, "next_wake": None})
    entry["waiting"] += count
    entry["due"] += due
    if next_wake is not None and (entry["next_wake"] is None or next_wake < entry["next_wake"]):
        entry["next_wake"] = next_wake


def _node_status(node_id: str, node_type: str, found: dict[str, Any] | None) -> dict[str, Any]:
    found = found or {"waiting": 0, "due": 0, "next_wake": None}
    wake = found["next_wake"]
    return {"node_id": node_id, "type": node_type, "waiting": found["waiting"],
            "due": found["due"], "next_wake": wake.isoformat() if wake else None}
