"""Flow versions: save immutable versions with a message, list history, diff, roll back.

A saved version is the flow file ``flows/<flow id>/v<N>.json`` in the workspace (the layout
the engine's `Workspace` deploys to and loads from), so versions stay plain, git-friendly files
and the engine runs exactly what the builder saved. Messages and save times live next to them
in ``flows/<flow id>/history.jsonl`` (one JSON object per line, append-only). Versions are never
rewritten: a file is claimed with an exclusive hard link, so two savers racing for the same
number cannot overwrite each other, and a rollback saves the old content as a *new* version.

This module reads and writes files only; it never opens the DuckDB store, so saving works while
a run holds the store.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mawb.engine.layout import default_home
from mawb.engine.moves import (  # contacts in flight live with the engine; named here too
    InFlight,
    MovePlan,
    MoveResult,
    in_flight,
    move_in_flight,
    move_partition,
    plan_move,
)
from mawb.model import Flow, FlowFileError, load
from mawb.validate import FlowInvalidError, validate_flow

HISTORY_FILE = "history.jsonl"
_VERSION_FILE = re.compile(r"^v(\d+)\.json$")

ChangeKind = Literal["added", "removed", "changed"]


class NothingToSaveError(ValueError):
    """The flow is identical to its latest saved version."""


@dataclass(frozen=True)
class VersionInfo:
    """One saved version as listed in the history."""

    flow_id: str
    version: int
    message: str
    saved_at: str | None
    nodes: int
    edges: int

    def to_row(self) -> dict[str, Any]:
        return {"version": self.version, "saved_at": self.saved_at or "", "message": self.message,
                "nodes": self.nodes, "edges": self.edges}


@dataclass(frozen=True)
class Change:
    """One difference between two versions, e.g. ``changed param welcome.subject``."""

    kind: ChangeKind
    item: str  # flow, setting, flow_param, node, param, edge
    subject: str
    before: Any = None
    after: Any = None

    def __str__(self) -> str:
        text = f"{self.kind} {self.item} {self.subject}"
        if self.kind == "changed":
            text += f": {_short(self.before)} -> {_short(self.after)}"
        return text


@dataclass(frozen=True)
class FlowDiff:
    """Behavioural differences between two flows (layout moves are counted apart)."""

    changes: tuple[Change, ...] = ()
    moved_nodes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.changes

    def of(self, kind: ChangeKind, item: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind and c.item == item]

    def summary(self) -> str:
        """One line such as ``1 node added, 2 params changed, 1 edge removed``."""
        counts: dict[tuple[str, str], int] = {}
        for change in self.changes:
            counts[(change.item, change.kind)] = counts.get((change.item, change.kind), 0) + 1
        parts = [f"{n} {item.replace('_', ' ')}{'s' if n > 1 else ''} {kind}"
                 for (item, kind), n in counts.items()]
        if self.moved_nodes:
            parts.append(f"{len(self.moved_nodes)} moved on the canvas")
        return ", ".join(parts) or "no changes"

    def to_rows(self) -> list[dict[str, str]]:
        return [{"change": c.kind, "item": c.item, "subject": c.subject,
                 "before": _short(c.before), "after": _short(c.after)} for c in self.changes]


class VersionStore:
    """Saved versions of the flows in one workspace (``MAWB_HOME`` or ``.mawb`` by default)."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()

    def folder(self, flow_id: str) -> Path:
        return self.home / "flows" / flow_id

    def path(self, flow_id: str, version: int) -> Path:
        return self.folder(flow_id) / f"v{version}.json"

    # -- reading -------------------------------------------------------------------------------
    def flow_ids(self) -> list[str]:
        """Ids of flows with at least one saved version, sorted."""
        root = self.home / "flows"
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, flow_id: str) -> list[int]:
        folder = self.folder(flow_id)
        if not folder.is_dir():
            return []
        found = (_VERSION_FILE.match(p.name) for p in folder.iterdir())
        return sorted(int(match.group(1)) for match in found if match)

    def latest(self, flow_id: str) -> int | None:
        return max(self.versions(flow_id), default=None)

    def load(self, flow_id: str, version: int | None = None) -> Flow:
        """A saved version (the latest by default); KeyError when there is none."""
        version = version if version is not None else self.latest(flow_id)
        if version is None or not self.path(flow_id, version).exists():
            raise KeyError(f"flow {flow_id!r} has no saved version {version}")
        return load(self.path(flow_id, version))

    def history(self, flow_id: str) -> list[VersionInfo]:
        """Every saved version, newest first, with its message (empty for versions saved by
        other tools, such as ``Workspace.deploy``)."""
        notes = self._notes(flow_id)
        listed = []
        for version in sorted(self.versions(flow_id), reverse=True):
            note = notes.get(version, {})
            message = str(note.get("message", ""))
            try:
                flow = self.load(flow_id, version)
            except FlowFileError as error:  # edited by hand: list it, say why it cannot open
                listed.append(VersionInfo(flow_id, version, f"unreadable: {error.detail}",
                                          note.get("saved_at"), 0, 0))
                continue
            listed.append(VersionInfo(flow_id, version, message, note.get("saved_at"),
                                      len(flow.nodes), len(flow.edges)))
        return listed

    # -- writing -------------------------------------------------------------------------------
    def save(self, flow: Flow, message: str, *, allow_invalid: bool = False) -> Flow:
        """Save ``flow`` as the next version of its id and return it with that version number.

        Refuses an invalid flow (FlowInvalidError carries the report; the engine must never
        pick up a broken version) unless ``allow_invalid``, and a flow identical to the latest
        version (NothingToSaveError).
        """
        if not allow_invalid:
            report = validate_flow(flow)
            if not report.valid:
                raise FlowInvalidError(flow.id, report)
        latest = self.latest(flow.id)
        if latest is not None and _same_file(self.load(flow.id, latest), flow):
            raise NothingToSaveError(f"nothing changed since version {latest}")
        folder = self.folder(flow.id)
        folder.mkdir(parents=True, exist_ok=True)
        version = (latest or 0) + 1
        while True:
            saved = flow.model_copy(update={"version": version}, deep=True)
            if _claim(self.path(flow.id, version), saved.to_json()):
                break
            version += 1  # another saver took this number first
        self._append_note(flow.id, version, message.strip())
        return saved

    def rollback(self, flow_id: str, version: int, message: str | None = None) -> Flow:
        """Save the content of ``version`` again as a new latest version and return it."""
        old = self.load(flow_id, version)
        return self.save(old, message or f"Roll back to v{version}")

    def _notes(self, flow_id: str) -> dict[int, dict[str, Any]]:
        path = self.folder(flow_id) / HISTORY_FILE
        notes: dict[int, dict[str, Any]] = {}
        if not path.exists():
            return notes
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and isinstance(entry.get("version"), int):
                    notes[entry["version"]] = entry
        return notes

    def _append_note(self, flow_id: str, version: int, message: str) -> None:
        entry = {"version": version, "message": message,
                 "saved_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}
        # One short line per append: O_APPEND writes of this size do not interleave.
        with (self.folder(flow_id) / HISTORY_FILE).open("a", encoding="utf-8") as history:
            history.write(json.dumps(entry, ensure_ascii=False) + "\n")


def diff(before: Flow, after: Flow) -> FlowDiff:
    """What changed from ``before`` to ``after``: flow fields, settings, flow params, nodes,
    node params (per key) and edges; nodes that only moved are listed in ``moved_nodes``.

    >>> from mawb.model import Flow
    >>> old = Flow.new("f").add("a", "manual_trigger")
    >>> new = Flow.new("f").add("a", "manual_trigger").add("b", "email_send").connect("a", "b")
    >>> diff(old, new).summary()
    '1 node added, 1 edge added'
    """
    changes: list[Change] = []
    for name in ("name", "description"):
        changes += _compare("flow", name, getattr(before, name), getattr(after, name))
    changes += _compare_maps("setting", "", before.settings.model_dump(mode="json"),
                             after.settings.model_dump(mode="json"))
    changes += _compare_maps("flow_param", "", before.params, after.params)
    changes += _node_changes(before, after)
    changes += _edge_changes(before, after)
    return FlowDiff(tuple(changes), _moved(before, after))


def _node_changes(before: Flow, after: Flow) -> list[Change]:
    old = {node.id: node for node in before.nodes}
    new = {node.id: node for node in after.nodes}
    changes = [Change("removed", "node", node_id, before=old[node_id].type)
               for node_id in old if node_id not in new]
    changes += [Change("added", "node", node_id, after=new[node_id].type)
                for node_id in new if node_id not in old]
    for node_id in old.keys() & new.keys():
        was, now = old[node_id], new[node_id]
        changes += _compare("node", f"{node_id}.type", was.type, now.type)
        changes += _compare("node", f"{node_id}.label", was.label, now.label)
        changes += _compare_maps("param", f"{node_id}.", was.params, now.params)
    order = {node.id: index for index, node in enumerate([*after.nodes, *before.nodes])}
    return sorted(changes, key=lambda c: (order.get(c.subject.split(".")[0], 0), c.subject))


def _edge_changes(before: Flow, after: Flow) -> list[Change]:
    def named(flow: Flow) -> list[str]:
        return [f"{e.source} -[{e.branch}]-> {e.target}" if e.branch
                else f"{e.source} -> {e.target}" for e in flow.edges]

    old, new = named(before), named(after)
    return ([Change("removed", "edge", edge) for edge in old if edge not in new]
            + [Change("added", "edge", edge) for edge in new if edge not in old])


def _compare(item: str, subject: str, before: Any, after: Any) -> list[Change]:
    return [] if before == after else [Change("changed", item, subject, before, after)]


def _compare_maps(item: str, prefix: str, before: dict[str, Any],
                  after: dict[str, Any]) -> list[Change]:
    changes = []
    for key in sorted(before.keys() | after.keys()):
        subject = f"{prefix}{key}"
        if key not in after:
            changes.append(Change("removed", item, subject, before=before[key]))
        elif key not in before:
            changes.append(Change("added", item, subject, after=after[key]))
        elif before[key] != after[key]:
            changes.append(Change("changed", item, subject, before[key], after[key]))
    return changes


def _moved(before: Flow, after: Flow) -> tuple[str, ...]:
    old, new = before.ui.positions, after.ui.positions
    kept = {node.id for node in after.nodes} & {node.id for node in before.nodes}
    return tuple(sorted(node_id for node_id in kept
                        if node_id in old and node_id in new
                        and tuple(map(round, old[node_id])) != tuple(map(round, new[node_id]))))


def _same_file(saved: Flow, flow: Flow) -> bool:
    return saved.model_dump(exclude={"version"}) == flow.model_dump(exclude={"version"})


def _claim(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` only if it does not exist yet, atomically (link, not rename:
    a rename would silently replace a version saved a moment earlier)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _short(value: Any, limit: int = 60) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["HISTORY_FILE", "FlowDiff", "InFlight", "MovePlan", "MoveResult", "NothingToSaveError",
           "VersionStore", "diff", "in_flight", "move_in_flight", "move_partition", "plan_move"]
