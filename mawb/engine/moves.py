"""Contacts in flight between versions of a flow: where they wait, and moving them on.

Contacts stay on the version they entered with and the engine drains older versions to the
end; moving them onto a newer version is an explicit, opt-in step (`mawb move-contacts`, the
Builder's "Contacts in flight", the service's `move` command). An enrollment moves whole or
not at all: same node id = same node unless a mapping says otherwise (same type only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mawb.engine.store import transaction

if TYPE_CHECKING:
    from mawb.model import Flow


@dataclass(frozen=True)
class MovePlan:
    """Where the contacts waiting at each node of one version would go in another.

    `mapping` sends an old node id to a new one (same id = same node unless told otherwise);
    `unmapped` lists old nodes without a counterpart of the same type in the new version:
    an enrollment with a token at one of them stays on the old version and finishes there."""

    flow_id: str
    from_version: int
    to_version: int
    mapping: dict[str, str]
    unmapped: tuple[str, ...]


@dataclass(frozen=True)
class MoveResult:
    plan: MovePlan
    moved: int  # enrollments now on the new version
    stayed: dict[str, int]  # unmapped node -> enrollments left on the old version because of it


def plan_move(old: Flow, new: Flow, mapping: dict[str, str] | None = None) -> MovePlan:
    """The node mapping for moving `old`'s in-flight contacts onto `new` (ValueError naming
    the node when an explicit mapping names a node that does not exist or changes type)."""
    if old.id != new.id:
        raise ValueError(f"cannot move contacts from flow {old.id} to another flow {new.id}")
    old_nodes = {node.id: node for node in old.nodes}
    new_nodes = {node.id: node for node in new.nodes}
    explicit = dict(mapping or {})
    for source, target in explicit.items():
        if source not in old_nodes:
            raise ValueError(f"--map {source}={target}: v{old.version} of {old.id} has no node "
                             f"{source!r} (nodes: {', '.join(old_nodes)})")
        if target not in new_nodes:
            raise ValueError(f"--map {source}={target}: v{new.version} of {new.id} has no node "
                             f"{target!r} (nodes: {', '.join(new_nodes)})")
        if old_nodes[source].type != new_nodes[target].type:
            raise ValueError(f"--map {source}={target}: a {old_nodes[source].type} node cannot "
                             f"become a {new_nodes[target].type} node (its waiting state would "
                             "mean nothing there)")
    chosen = {node_id: node_id for node_id, node in old_nodes.items()
              if node_id in new_nodes and new_nodes[node_id].type == node.type}
    chosen.update(explicit)
    unmapped = tuple(node_id for node_id in old_nodes if node_id not in chosen)
    return MovePlan(old.id, old.version, new.version, chosen, unmapped)


def move_in_flight(workspace: Any, flow_id: str, from_version: int, to_version: int,
                   mapping: dict[str, str] | None = None, now: datetime | None = None
                   ) -> MoveResult:
    """Move the active enrollments of one version onto another, partition by partition.

    An enrollment moves whole (all its tokens) or not at all: one with a token at an
    unmapped node stays on `from_version`, which keeps draining it. Each partition moves in
    one transaction and logs a `moved` row per token in `node_log`."""
    plan = plan_move(workspace.load_flow(flow_id, from_version),
                     workspace.load_flow(flow_id, to_version), mapping)
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    moved, stayed = 0, dict.fromkeys(plan.unmapped, 0)
    for partition in range(workspace.partitions):
        with workspace.connection(partition) as connection, transaction(connection):
            part_moved, part_stayed = move_partition(connection, plan, moment)
        moved += part_moved
        for node_id, count in part_stayed.items():
            stayed[node_id] += count
    return MoveResult(plan, moved, stayed)


def move_partition(connection: Any, plan: MovePlan, now: datetime
                   ) -> tuple[int, dict[str, int]]:
    """Move one partition's share inside the caller's transaction (the CLI's own, or the
    service loop's spool transaction); (enrollments moved, enrollments kept per unmapped node)."""
    import pandas as pd

    frame = pd.DataFrame({"old_node": list(plan.mapping), "new_node": list(plan.mapping.values())})
    connection.register("node_map", frame)
    try:
        keys = [plan.flow_id, plan.from_version]
        stayed = dict(connection.execute(
            "SELECT node_id, count(DISTINCT enrollment_id) FROM tokens WHERE flow_id = ? "
            "AND version = ? AND node_id NOT IN (SELECT old_node FROM node_map) GROUP BY 1",
            keys).fetchall())
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE moving AS SELECT enrollment_id FROM enrollments "
            "WHERE flow_id = ? AND version = ? AND status = 'active' AND enrollment_id NOT IN "
            "(SELECT enrollment_id FROM tokens WHERE flow_id = ? AND version = ? "
            " AND node_id NOT IN (SELECT old_node FROM node_map))", keys + keys)
        connection.execute(
            "INSERT INTO node_log SELECT ?, t.flow_id, ?, t.enrollment_id, t.contact_id, "
            "m.new_node, 'moved', NULL, ? FROM tokens t "
            "JOIN node_map m ON m.old_node = t.node_id WHERE t.flow_id = ? AND t.version = ? "
            "AND t.enrollment_id IN (SELECT enrollment_id FROM moving)",
            [now, plan.to_version, f"from v{plan.from_version}", *keys])
        connection.execute(
            "UPDATE tokens SET version = ?, node_id = m.new_node FROM node_map m "
            "WHERE m.old_node = tokens.node_id AND tokens.flow_id = ? AND tokens.version = ? "
            "AND tokens.enrollment_id IN (SELECT enrollment_id FROM moving)",
            [plan.to_version, *keys])
        row = connection.execute(
            "UPDATE enrollments SET version = ? WHERE flow_id = ? AND version = ? "
            "AND enrollment_id IN (SELECT enrollment_id FROM moving) RETURNING enrollment_id",
            [plan.to_version, *keys]).fetchall()
    finally:
        connection.unregister("node_map")
    return len(row), {str(k): int(v) for k, v in stayed.items()}


@dataclass(frozen=True)
class InFlight:
    """One version's active enrollments: how many, and how many wait at each node (an
    enrollment in parallel branches waits at several, so `at` may add up to more)."""

    enrollments: int
    at: dict[str, int]


def in_flight(connection: Any, flow_id: str) -> dict[int, InFlight]:
    """Active enrollments of `flow_id` per version, from a read connection: what a publish
    leaves on older versions. Keys include the contact id, since a partitioned workspace's
    union repeats enrollment ids across partitions."""
    waiting = """
        SELECT t.version, t.node_id, (t.contact_id, t.enrollment_id) AS enrollment
        FROM tokens t JOIN enrollments e ON e.enrollment_id = t.enrollment_id
         AND e.contact_id = t.contact_id
        WHERE t.flow_id = ? AND e.status = 'active'"""
    totals = dict(connection.execute(
        f"SELECT version, count(DISTINCT enrollment) FROM ({waiting}) GROUP BY 1",
        [flow_id]).fetchall())
    found = {int(v): InFlight(int(n), {}) for v, n in totals.items()}
    for version, node_id, count in connection.execute(
            f"SELECT version, node_id, count(DISTINCT enrollment) FROM ({waiting}) "
            "GROUP BY 1, 2 ORDER BY 1, 2", [flow_id]).fetchall():
        found[int(version)].at[str(node_id)] = int(count)
    return found
