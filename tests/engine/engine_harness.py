"""Shared helpers of the engine tests: run a flow through the engine and the reference.

`run_both` ticks a fresh workspace and the per-contact reference interpreter in lockstep
(the engine's `next_due` drives the clock, and the reference must agree on it) and returns
both final states; `assert_same` compares them field by field with readable diffs.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from support.reference import Reference, ReferenceResult, engine_result

from mawb.engine.workspace import Workspace
from mawb.nodes import get as node_type
from mawb.nodes.actions import DataUpdateParams

if TYPE_CHECKING:
    from mawb.model import Flow

START = datetime(2026, 11, 2, 9, 0)
ENGAGEMENT = ["email_opens", "email_clicks", "converted", "unsubscribed", "last_open_at"]


@dataclass
class Pair:
    engine: ReferenceResult
    reference: ReferenceResult
    workspace: Workspace


def scratch_home() -> tempfile.TemporaryDirectory[str]:
    """A throwaway workspace folder, in shared memory where the OS offers it.

    Every stage commits (and fsyncs) its own transaction; on a RAM-backed folder that costs
    nothing, which keeps hundreds of property-test ticks fast without changing semantics."""
    memory = Path("/dev/shm")
    fast = memory.is_dir() and os.access(memory, os.W_OK)
    return tempfile.TemporaryDirectory(prefix="mawb-engine-", dir=memory if fast else None)


def written_attributes(flow: Flow) -> list[str]:
    names: list[str] = []
    for node in flow.nodes:
        params = node_type(node.type).parse(node.params)
        if isinstance(params, DataUpdateParams):
            names += [*params.set, *params.increment]
    return sorted(set(names))


def contacts_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def run_both(flow: Flow, contacts: pd.DataFrame, events: pd.DataFrame | None, home: Path,
             *, start: datetime = START, max_ticks: int = 40, partitions: int = 1,
             requests: list[tuple[str, list[str], datetime]] | None = None,
             fixed_ticks: list[datetime] | None = None) -> Pair:
    """Tick engine and reference together; the clock follows the engine's `next_due`."""
    workspace = Workspace(home, partitions=partitions)
    with workspace.session():
        return _run_both(workspace, flow, contacts, events, start=start, max_ticks=max_ticks,
                         requests=requests, fixed_ticks=fixed_ticks)


def _run_both(workspace: Workspace, flow: Flow, contacts: pd.DataFrame,
              events: pd.DataFrame | None, *, start: datetime, max_ticks: int,
              requests: list[tuple[str, list[str], datetime]] | None,
              fixed_ticks: list[datetime] | None) -> Pair:
    workspace.import_contacts(contacts)
    if events is not None and len(events):
        workspace.import_events(events)
    workspace.deploy(flow)
    reference = Reference(flow, contacts, events)
    for node_id, ids, at in requests or []:
        workspace.request_enrollment(flow, node_id, ids, at)
        reference.request_enrollment(node_id, ids, at)
    if fixed_ticks is not None:
        for now in fixed_ticks:
            workspace.tick(flow, now)
            reference.tick(now)
    else:
        now: datetime | None = start
        for _ in range(max_ticks):
            if now is None:
                break
            workspace.tick(flow, now)
            reference.tick(now)
            engine_due = workspace.next_due(flow, now)
            reference_due = reference.next_due(now)
            assert engine_due == reference_due, (
                f"next_due after {now}: engine {engine_due}, reference {reference_due}")
            now = engine_due
    return Pair(engine_result(workspace, flow), reference.result(), workspace)


def assert_same(pair: Pair, attributes: list[str] | None = None) -> None:
    """Identical node logs, outbox, messages, enrollments, tokens and written attributes."""
    engine, reference = pair.engine, pair.reference
    for name in ("enrollments", "node_log", "tokens", "outbox", "messages"):
        got, want = getattr(engine, name), getattr(reference, name)
        if got != want:
            only_engine = [r for r in got if r not in want][:8]
            only_reference = [r for r in want if r not in got][:8]
            raise AssertionError(
                f"{name} differ ({len(got)} engine vs {len(want)} reference rows)\n"
                f"only in engine: {only_engine}\nonly in reference: {only_reference}")
    assert engine.funnel() == reference.funnel()
    names = list(attributes or []) + ENGAGEMENT
    got_attrs, want_attrs = engine.attributes(names), reference.attributes(names)
    if got_attrs != want_attrs:
        diff = {c: (got_attrs[c], want_attrs.get(c)) for c in got_attrs
                if got_attrs[c] != want_attrs.get(c)}
        raise AssertionError(f"attributes differ (engine, reference): {list(diff.items())[:5]}")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC).replace(tzinfo=None)  # type: ignore[misc]


def day(n: float) -> timedelta:
    return timedelta(days=n)
