"""Shared helpers of the engine tests: run a flow through the engine and the reference.

`run_both` ticks a fresh workspace and the per-contact reference interpreter in lockstep
(the engine's `next_due` drives the clock, and the reference must agree on it) and returns
both final states; `assert_same` compares them field by field with readable diffs.

Rows for a connection are delivered after every tick, on both sides, by `StubProvider` (the
engine's dispatcher) and `stub_answer` (the reference): the same answers at the provider
boundary. A `Publish` deploys a second version mid-run, optionally moving contacts onto it.
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

from mawb.channels.base import OutboundMessage, SendResult
from mawb.channels.http import dig
from mawb.engine.deliver import deliver, uses_connections
from mawb.engine.workspace import Workspace
from mawb.nodes import get as node_type
from mawb.nodes.integrations import DatabaseQueryParams
from mawb.query import check_query
from mawb.versions import move_in_flight

if TYPE_CHECKING:
    from mawb.model import Flow

START = datetime(2026, 11, 2, 9, 0)
ENGAGEMENT = ["email_opens", "email_clicks", "converted", "unsubscribed", "last_open_at"]


@dataclass
class Pair:
    engine: ReferenceResult
    reference: ReferenceResult
    workspace: Workspace


@dataclass
class Publish:
    """A new version deployed after tick number `after`; `mapping` (old node -> new node,
    same id = same node by default) moves in-flight contacts onto it, None leaves them."""

    flow: Flow
    after: int
    mapping: dict[str, str] | None = None


def stub_answer(contact_id: str) -> dict[str, Any]:
    """What the stub API answers about a contact: a pure function of its id, so the engine's
    provider (which sees the rendered URL) and the reference (which sees the contact) agree
    only if the URL was rendered for the right contact."""
    number = int("".join(ch for ch in contact_id if ch.isdigit()) or 0)
    return {"data": {"employees": number * 10 + 5, "plan": "pro" if number % 2 else "free"}}


class StubProvider:
    """A provider at the outbox boundary: accepts every row; an api row's reply is
    `stub_answer` of the URL's last segment, read through the node's `store` paths as the
    http provider does."""

    name = "stub"

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        results = []
        for message in messages:
            response = None
            store = message.payload.get("store") or {}
            if message.channel == "api" and store:
                answer = stub_answer(str(message.payload["url"]).rsplit("/", 1)[-1])
                response = {name: dig(answer, path) for name, path in store.items()}
            results.append(SendResult(message.idempotency_key, ok=True,
                                      provider_ref=f"stub:{message.idempotency_key}",
                                      response=response))
        return results

    def check(self) -> str:
        return "stub"


def scratch_home() -> tempfile.TemporaryDirectory[str]:
    """A throwaway workspace folder, in shared memory where the OS offers it.

    Every stage commits (and fsyncs) its own transaction; on a RAM-backed folder that costs
    nothing, which keeps hundreds of property-test ticks fast without changing semantics."""
    memory = Path("/dev/shm")
    fast = memory.is_dir() and os.access(memory, os.W_OK)
    return tempfile.TemporaryDirectory(prefix="mawb-engine-", dir=memory if fast else None)


def written_attributes(*versions: Flow) -> list[str]:
    """Every contact attribute the flow's versions write (updates, CRM mirrors, API answers,
    query results)."""
    names: list[str] = []
    for flow in versions:
        for node in flow.nodes:
            params = node_type(node.type).parse(node.params)
            names += [*getattr(params, "set", {}), *getattr(params, "increment", {}),
                      *getattr(params, "store", {})]
            if getattr(params, "mirror_attributes", False):
                names += list(params.fields)  # type: ignore[attr-defined]
            if isinstance(params, DatabaseQueryParams):
                outputs = [o for o in check_query(params.sql).outputs if o != "contact_id"]
                names += params.columns or outputs
    return sorted(set(names))


def contacts_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def run_both(flow: Flow, contacts: pd.DataFrame, events: pd.DataFrame | None, home: Path,
             *, start: datetime = START, max_ticks: int = 40, partitions: int = 1,
             requests: list[tuple[str, list[str], datetime]] | None = None,
             fixed_ticks: list[datetime] | None = None, params: dict[str, Any] | None = None,
             publish: Publish | None = None) -> Pair:
    """Tick engine and reference together; the clock follows the engine's `next_due`.

    `params` override the first version's defaults at each of its ticks; after `publish`
    the new version runs with its own defaults while the first drains with its last ones."""
    workspace = Workspace(home, partitions=partitions)
    with workspace.session():
        return _run_both(workspace, flow, contacts, events, start=start, max_ticks=max_ticks,
                         requests=requests, fixed_ticks=fixed_ticks, params=params,
                         publish=publish)


def _run_both(workspace: Workspace, flow: Flow, contacts: pd.DataFrame,
              events: pd.DataFrame | None, *, start: datetime, max_ticks: int,
              requests: list[tuple[str, list[str], datetime]] | None,
              fixed_ticks: list[datetime] | None, params: dict[str, Any] | None,
              publish: Publish | None) -> Pair:
    workspace.import_contacts(contacts)
    if events is not None and len(events):
        workspace.import_events(events)
    workspace.deploy(flow)
    reference = Reference(flow, contacts, events)
    for node_id, ids, at in requests or []:
        workspace.request_enrollment(flow, node_id, ids, at)
        reference.request_enrollment(node_id, ids, at)
    stub = StubProvider()
    running, overrides = flow, params or {}
    connected = uses_connections(flow) or (publish is not None and uses_connections(publish.flow))

    def tick(now: datetime) -> None:
        workspace.tick(running, now, overrides or None)
        reference.tick(now, overrides)
        if connected:  # the dispatcher, as `run_on_clock` runs it after each tick
            deliver(workspace, [flow.id], now, providers={"stub_http": stub, "stub_crm": stub})
            reference.deliver(now, stub_answer)

    def maybe_publish(count: int, now: datetime) -> None:
        nonlocal running, overrides
        if publish is None or count != publish.after:
            return
        old, running, overrides = running, workspace.deploy(publish.flow), {}
        reference.publish(publish.flow)
        if publish.mapping is not None:
            move_in_flight(workspace, flow.id, old.version, running.version,
                           publish.mapping, now)
            reference.move(old.version, same_nodes(old, running, publish.mapping), now)

    if fixed_ticks is not None:
        for count, now in enumerate(fixed_ticks, start=1):
            tick(now)
            maybe_publish(count, now)
    else:
        now: datetime | None = start
        for count in range(1, max_ticks + 1):
            if now is None:
                break
            tick(now)
            maybe_publish(count, now)
            engine_due = workspace.next_due(running, now)
            reference_due = reference.next_due(now)
            assert engine_due == reference_due, (
                f"next_due after {now}: engine {engine_due}, reference {reference_due}")
            now = engine_due
    return Pair(engine_result(workspace, flow), reference.result(), workspace)


def same_nodes(old: Flow, new: Flow, explicit: dict[str, str]) -> dict[str, str]:
    """The documented default mapping (same id and type = same node) plus `explicit`."""
    kept = {n.id: n.id for n in old.nodes
            if any(m.id == n.id and m.type == n.type for m in new.nodes)}
    return {**kept, **explicit}


def assert_same(pair: Pair, attributes: list[str] | None = None) -> None:
    """Identical node logs, outbox, messages, enrollments, tokens and written attributes."""
    engine, reference = pair.engine, pair.reference
    for name in ("enrollments", "versions", "node_log", "tokens", "outbox", "messages",
                 "crm_records"):
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
