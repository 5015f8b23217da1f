"""Which webhook_trigger node a `/hooks/{flow_id}/{node}` request addresses.

Deployed versions are immutable files `flows/<flow id>/v<N>.json`; the endpoint belongs to the
newest version that still holds a webhook_trigger node with that id (or, failing that, whose
`path` param is that name, the URL the Builder shows). The lookup reads files, never the store,
and caches per flow folder, keyed by the names and modification times of its version files, so a
new deploy is seen on the next request.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mawb.nodes import registry
from mawb.nodes.base import TriggerKind
from mawb.nodes.triggers import WebhookParams

if TYPE_CHECKING:
    from pathlib import Path

_FLOW_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_VERSION_FILE = re.compile(r"^v([0-9]{1,9})\.json$")


@dataclass(frozen=True)
class HookTarget:
    flow_id: str
    version: int
    node_id: str
    event: str
    secret_ref: str
    path: str


class HookDirectory:
    """Cached webhook_trigger nodes of every deployed flow of a workspace."""

    def __init__(self, home: Path) -> None:
        self.flows_dir = home / "flows"
        self._cache: dict[str, tuple[tuple[tuple[str, int], ...], list[HookTarget]]] = {}
        self._lock = threading.Lock()

    def find(self, flow_id: str, name: str) -> HookTarget | None:
        if not _FLOW_ID.match(flow_id):
            return None
        targets = self._targets(flow_id)
        for match in (lambda t: t.node_id == name, lambda t: t.path == name):
            for target in targets:  # newest version first
                if match(target):
                    return target
        return None

    def _targets(self, flow_id: str) -> list[HookTarget]:
        folder = self.flows_dir / flow_id
        try:
            with os.scandir(folder) as entries:
                stamp = tuple(sorted((entry.name, entry.stat().st_mtime_ns) for entry in entries
                                     if _VERSION_FILE.match(entry.name)))
        except (FileNotFoundError, NotADirectoryError):
            return []
        with self._lock:
            cached = self._cache.get(flow_id)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        targets = _read_targets(folder, flow_id, [name for name, _ in stamp])
        with self._lock:
            self._cache[flow_id] = (stamp, targets)
        return targets


def _is_webhook(type_name: Any) -> bool:
    return (isinstance(type_name, str) and registry.has(type_name)
            and registry.get(type_name).trigger_kind is TriggerKind.WEBHOOK)


def _read_targets(folder: Path, flow_id: str, names: list[str]) -> list[HookTarget]:
    """Webhook nodes of every version, newest version first; unreadable files are skipped
    (a deploy validates versions, so only a hand-edited file can be broken)."""
    versions = sorted((int(m.group(1)), name) for name in names
                      if (m := _VERSION_FILE.match(name)))
    targets: list[HookTarget] = []
    for version, name in reversed(versions):
        try:
            document = json.loads((folder / name).read_text())
            nodes = [node for node in document.get("nodes", [])
                     if isinstance(node, dict) and _is_webhook(node.get("type"))]
        except (OSError, ValueError, AttributeError):
            continue
        for node in nodes:
            try:
                params = WebhookParams.model_validate(node.get("params") or {})
            except ValidationError:
                continue
            targets.append(HookTarget(flow_id, version, str(node.get("id")), params.event,
                                      params.secret, params.path))
    return targets
