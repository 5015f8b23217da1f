"""The service loop: the one writer of a workspace, ticking every live flow.

Each iteration opens the stores, loads the spool once (events, contacts and the commands other
processes sent: lifecycle changes, deploys, enrollments, imports — `mawb.engine.spool`), ticks
every live flow whose tick is due, closes the stores, and then runs the dispatcher (network I/O
never happens while a store is open). Between iterations the stores are closed, so the pages,
the CLI and notebooks can open them read-only.

A flow's tick is due at its `settings.tick` interval after the last one, earlier when its own
store says something is due (a wait ends, a schedule fires), and at once when an accepted event
could enroll someone: `wake(records)` is the intake's `on_accepted` hook, called once a batch
is durable; it marks the event-, behaviour- and webhook-triggered live flows listening for
those events and wakes the loop. Other writers (the CLI, the pages) drop command files into
the spool; the loop notices them within `poll_seconds` without opening the store.

A flow whose tick fails is logged with its error and retried at its next interval; the other
flows keep running.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mawb.engine import lifecycle, spool
from mawb.engine.runner import parse_interval
from mawb.engine.store import StoreBusyError, utc_naive
from mawb.engine.workspace import Workspace
from mawb.flowplan import node_params, plan
from mawb.nodes import triggers
from mawb.nodes.base import TriggerKind

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from mawb.model import Flow

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = timedelta(minutes=1)
POLL_SECONDS = 1.0


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class FlowState:
    """What the loop knows about one live flow between iterations."""

    flow: Flow
    interval: timedelta
    next_at: datetime
    events: frozenset[str]  # event names that may enroll someone (event/behaviour triggers)
    webhook: bool
    last_tick: datetime | None = None
    last_error: str | None = None
    ticks: int = 0


@dataclass
class Iteration:
    """One pass of the loop: what was loaded and which flows were ticked."""

    at: datetime
    loaded: spool.LoadReport
    ticked: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    delivered: Any = None
    seconds: float = 0.0


class ServiceLoop:
    """Load the spool, tick due live flows, dispatch; repeat until `stop()`."""

    def __init__(self, home: str | Path, *, clock: Callable[[], datetime] = _utc_now,
                 poll_seconds: float = POLL_SECONDS,
                 deliver: Callable[[Workspace], Any] | None = None) -> None:
        self.workspace = Workspace(home)
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.deliver = deliver if deliver is not None else _dispatcher()
        self.flows: dict[str, FlowState] = {}
        self.iterations = 0
        self.last: Iteration | None = None
        self._urgent: set[str] = set()
        self._dirty = True  # lifecycle states must be (re)read from the store
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    # -- called from other threads -------------------------------------------------------------
    def wake(self, records: Iterable[dict[str, Any]] | None = None) -> None:
        """A batch is durable in the spool: tick the live flows it may enroll into, now."""
        names: set[str] = set()
        hooked: set[str] = set()
        for record in records or ():
            if record.get("kind") == "event":
                names.add(str(record.get("name")))
                source = str(record.get("source") or "")
                if source.startswith("webhook:"):
                    hooked.add(source.split(":")[1])
            elif record.get("kind") == "command":
                self._dirty = True
        with self._lock:
            for flow_id, state in self.flows.items():
                if state.events & names or (state.webhook and flow_id in hooked):
                    self._urgent.add(flow_id)
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the loop's thread to end; True once it has (or never started)."""
        if self.thread is None:
            return True
        self.thread.join(timeout)
        return not self.thread.is_alive()

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        """Iterate until `stop()`; a store another process holds too long is retried."""
        while not self._stop.is_set():
            if self._work_waiting():
                try:
                    self.iterate()
                except StoreBusyError as error:
                    log.warning("store busy, retrying: %s", error)
                except Exception:  # never let one bad iteration end the service
                    log.exception("service loop iteration failed")
                    self._stop.wait(self.poll_seconds)
            self._wake.wait(self._sleep_seconds())
            self._wake.clear()

    def _work_waiting(self) -> bool:
        """Whether an iteration has anything to do (checked without opening the store)."""
        if self._dirty or self._urgent or spool.pending(self.workspace.home):
            return True
        now = self.clock()
        return any(state.next_at <= now for state in self.flows.values())

    def _sleep_seconds(self) -> float:
        now = self.clock()
        soonest = min((s.next_at for s in self.flows.values()), default=None)
        until = (soonest - now).total_seconds() if soonest else self.poll_seconds
        return max(0.0, min(self.poll_seconds, until))

    def iterate(self) -> Iteration:
        """One pass: load the spool, tick what is due, close the store, dispatch."""
        started = time.perf_counter()
        with self._lock:
            urgent, self._urgent = self._urgent, set()
        with self.workspace.session():
            loaded = self.workspace.load_spool()
            # The tick time follows the load, so everything just loaded (an enrollment request
            # stamped at load time, an event accepted a moment ago) is due in this tick.
            now = utc_naive(self.clock())
            if self._dirty or loaded.commands:
                self._refresh()
            urgent |= loaded.wake_flows
            iteration = Iteration(now, loaded)
            for flow_id, state in list(self.flows.items()):
                listened = state.events & loaded.event_names
                if flow_id in urgent or listened or state.next_at <= now:
                    self._tick(state, now, iteration)
        if self.deliver is not None:
            try:
                iteration.delivered = self.deliver(self.workspace)
            except Exception as error:  # delivery has its own retries; report and go on
                log.exception("dispatcher failed")
                iteration.failed["_deliver"] = repr(error)
        iteration.seconds = time.perf_counter() - started
        self.iterations += 1
        self.last = iteration
        if loaded.quarantined or loaded.failed_commands or loaded.rejected:
            log.warning("spool: %d rejected records, quarantined %s, failed commands %s",
                        loaded.rejected, loaded.quarantined, loaded.failed_commands)
        return iteration

    def _tick(self, state: FlowState, now: datetime, iteration: Iteration) -> None:
        try:
            self.workspace.tick(state.flow, now, load_spool=False)
        except Exception as error:
            log.exception("flow %s: tick at %s failed", state.flow.id, now.isoformat())
            state.last_error = f"{type(error).__name__}: {error}"
            state.next_at = now + state.interval
            iteration.failed[state.flow.id] = state.last_error
            return
        state.ticks += 1
        state.last_tick = now
        state.last_error = None
        iteration.ticked.append(state.flow.id)
        due = self.workspace.next_due(state.flow, now)
        state.next_at = min(now + state.interval, due) if due else now + state.interval

    def _refresh(self) -> None:
        """Re-read which flows are live (and their newest version) after a command."""
        with self.workspace.connection(0) as connection:
            changes = lifecycle.states(connection)
        live = {flow_id for flow_id, change in changes.items()
                if change.state is lifecycle.State.LIVE}
        now = utc_naive(self.clock())
        fresh: dict[str, FlowState] = {}
        for flow_id in sorted(live):
            try:
                flow = self.workspace.load_flow(flow_id)
            except (KeyError, ValueError) as error:
                log.error("live flow %s cannot be loaded: %s", flow_id, error)
                continue
            known = self.flows.get(flow_id)
            if known is not None and known.flow.version == flow.version:
                fresh[flow_id] = known
                continue
            fresh[flow_id] = _state_of(flow, now)
        with self._lock:
            self.flows = fresh
        self._dirty = False

    def status(self) -> dict[str, Any]:
        """The loop's view, for `/v1/service` and `mawb flows list`."""
        return {
            "iterations": self.iterations,
            "last_iteration": self.last.at.isoformat() if self.last else None,
            "last_seconds": round(self.last.seconds, 4) if self.last else None,
            "spool_pending": len(spool.pending(self.workspace.home)),
            "flows": {
                flow_id: {"version": s.flow.version, "interval_seconds": s.interval.total_seconds(),
                          "next_tick": s.next_at.isoformat(), "ticks": s.ticks,
                          "last_tick": s.last_tick.isoformat() if s.last_tick else None,
                          "last_error": s.last_error}
                for flow_id, s in self.flows.items()
            },
        }


def _state_of(flow: Flow, now: datetime) -> FlowState:
    try:
        interval = parse_interval(flow.settings.tick)
    except ValueError:
        interval = DEFAULT_INTERVAL
    events: set[str] = set()
    webhook = False
    planned = plan(flow)
    for node_id in planned.triggers:
        kind, params = planned.types[node_id].trigger_kind, node_params(flow, node_id)
        if kind is TriggerKind.WEBHOOK:
            webhook = True
        elif kind is TriggerKind.EVENT:
            assert isinstance(params, triggers.EventParams)
            events.add(params.event)
        elif kind is TriggerKind.BEHAVIORAL:
            assert isinstance(params, triggers.BehavioralParams)
            events.update(params.events)
    return FlowState(flow, interval, now, frozenset(events), webhook)


def _dispatcher() -> Callable[[Workspace], Any] | None:
    """The delivery dispatcher, when this mawb has one (`mawb.engine.deliver.deliver`)."""
    try:
        from mawb.engine import deliver
    except ImportError:
        return None
    return getattr(deliver, "deliver", None)


def run_in_thread(loop: ServiceLoop) -> threading.Thread:
    """Run `loop` in a daemon thread (kept on `loop.thread`, so `join` can wait for it)."""
    loop.thread = threading.Thread(target=loop.run, name="mawb-service-loop", daemon=True)
    loop.thread.start()
    return loop.thread
