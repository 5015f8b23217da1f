"""Which stages of a tick can have work: the rest are skipped without a transaction.

Most ticks move few nodes: a flow of ten nodes whose contacts all wait in one delay has one
stage with work. Running every stage anyway costs a transaction, a `runs` row and a handful of
checks each, and that fixed cost (not the contacts) dominated small and medium runs. A plan
reads, in one statement at the start of the tick, which nodes hold due tokens, whether events
are due and whether dispatch has anything to do; as stages run it adds the nodes they can
have moved tokens to. A skipped stage is one that would have changed nothing but its own
`runs` row (exactly the rule `run_stage` already follows for an idle node), so a tick with a
plan ends in the same state as one without, and `Workspace.step` (one stage at a time, the
Airflow tasks) needs none.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import TYPE_CHECKING

from mawb.engine import enroll
from mawb.flowplan import node_params, plan
from mawb.nodes.base import Category

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime

    import duckdb

    from mawb.model import Flow

INGEST = "_ingest"
DISPATCH = "_dispatch"

_STATE = """
SELECT
    (SELECT coalesce(list({'node': node_id, 'fired': last_fired_at, 'seq': last_event_seq}),
                     [])
     FROM trigger_state WHERE flow_id = $flow),
    (SELECT coalesce(list(DISTINCT node_id), []) FROM tokens
     WHERE flow_id = $flow AND version = $version
       AND (wake_at <= $now OR list_contains($every_tick, node_id))),
    EXISTS (SELECT 1 FROM events WHERE applied_at IS NULL AND ts <= $now),
    EXISTS (SELECT 1 FROM outbox WHERE flow_id = $flow AND status = 'pending'
            AND not_before <= $now),
    {unsettled}
"""

# Tokens belong to active enrollments only, so a count that differs means some active
# enrollment has no token left: DISPATCH completes it. The distinct count is most of the
# statement's cost, so a caller that knows the answer (`settled`) skips it.
_UNSETTLED = """(SELECT count(*) FROM enrollments WHERE flow_id = $flow AND status = 'active')
    <> (SELECT count(DISTINCT enrollment_id) FROM tokens WHERE flow_id = $flow)"""


# Asked with (plan, stage) right before a planned stage runs; it may raise to stop the tick
# there (a sweep's shared prefix stops before the first stage that reads the swept param).
_GUARD: ContextVar[Callable[[TickPlan, str], None] | None] = ContextVar("stage_guard",
                                                                       default=None)


@contextlib.contextmanager
def guarded(guard: Callable[[TickPlan, str], None]) -> Iterator[None]:
    """Within the block, every stage a plan lets run is first shown to `guard`.

    A guard that raises stops the tick before that stage, as a crash there would: the stages
    before it are committed and recorded in `runs`, so ticking again at the same time does
    the rest and ends where an uninterrupted tick would."""
    token = _GUARD.set(guard)
    try:
        yield
    finally:
        _GUARD.reset(token)


class TickPlan:
    """The stages of one tick of `flow` that may have work (see the module docstring)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime,
                 settled: bool = False) -> None:
        """`settled`: the caller's previous tick of this flow ran to its end in this process
        and nothing else wrote since, so its DISPATCH left no active enrollment without a
        token and that check is skipped."""
        self.connection, self.flow, self.now = connection, flow, now
        every_tick = list(plan(flow).every_tick)
        statement = _STATE.replace("{unsettled}", "false" if settled else _UNSETTLED)
        row = connection.execute(statement, {"flow": flow.id, "version": flow.version,
                                             "now": now, "every_tick": every_tick}).fetchone()
        assert row is not None
        # Each trigger's state, read here once rather than once per trigger stage.
        self.triggers = {state["node"]: (state["fired"], state["seq"]) for state in row[0]}
        self.due: set[str] = set(row[1])
        self.events_due = bool(row[2])
        self.dispatch_due = bool(row[3]) or bool(row[4]) or bool(flow.settings.goal)
        self.moved = False  # whether any node stage ran (tokens may have moved or ended)

    def skip(self, stage: str) -> bool:
        """True when `stage` certainly has nothing to do at this tick (see `guarded`)."""
        skipped = self._skip(stage)
        guard = _GUARD.get()
        if not skipped and guard is not None:
            guard(self, stage)
        return skipped

    def idle(self, stage: str) -> bool:
        """True when `stage` is a node other than a trigger with no token to look at now (the
        plan lets every node after one that ran through; the stage itself then does nothing)."""
        if stage.startswith("_"):
            return False
        node_type = plan(self.flow).types[stage]
        if node_type.is_trigger():
            return False
        row = self.connection.execute(
            "SELECT EXISTS (SELECT 1 FROM tokens WHERE flow_id = ? AND version = ? "
            "AND node_id = ? AND (? OR wake_at <= ?))",
            [self.flow.id, self.flow.version, stage, node_type.every_tick, self.now],
        ).fetchone()
        return not (row and row[0])

    def _skip(self, stage: str) -> bool:
        if stage == INGEST:
            return not self.events_due
        if stage == DISPATCH:
            return not (self.dispatch_due or self.moved)
        if stage.startswith("_"):
            return False  # stages the plan does not know (e.g. draining older versions)
        node = self.flow.node(stage)
        node_type = plan(self.flow).types[stage]
        if stage in self.due:
            return False
        if node_type.category is Category.TRIGGER:
            params = node_params(self.flow, stage)
            return not enroll.may_enroll(self.connection, self.flow, node, params, self.now,
                                         self.triggers.get(node.id, (None, None)))
        return True

    def ran(self, stage: str) -> None:
        """`stage` ran: the nodes it leads to may now hold due tokens."""
        if stage.startswith("_"):
            return
        self.moved = True
        self.due.update(edge.target for edge in self.flow.outgoing(stage))
