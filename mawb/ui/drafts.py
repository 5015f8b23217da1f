"""Builder drafts: every edit of a flow autosaved in the workspace, valid or not.

A saved *version* must be valid and is immutable (`mawb.versions`); a draft is the work in
between, so a half-built flow has a home. One file per draft, `drafts/<key>.json` in the
workspace, written atomically (temp file, rename) so a crash of the server leaves the previous
draft or the new one, never half a file. A draft is written on every edit, so it is kept small
(compact JSON) and flushed to disk (fsync) at most once per `SYNC_SECONDS` per draft: an editor
that fsyncs every keystroke stalls on a busy disk, and what a power cut can cost is the last few
seconds of edits, never the file. The key is the flow id the draft started from, so renaming
the flow in its settings keeps writing the same draft. Drafts are plain files, like versions:
the workspace's store (and its one writer) is never involved.

    drafts = DraftStore(home)
    drafts.save("welcome", flow, based_on=3)
    drafts.latest().flow          # what the Builder reopens after a reload or a restart
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mawb.model import Flow, FlowFileError, loads

FOLDER = "drafts"
SYNC_SECONDS = 5.0
"""At most one fsync per draft file in this many seconds (the rename is atomic regardless)."""
_synced: dict[Path, float] = {}
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Draft:
    key: str
    flow: Flow
    based_on: int | None
    saved_at: datetime


class DraftStore:
    """The drafts of one workspace (`<home>/drafts/`)."""

    def __init__(self, home: str | Path) -> None:
        self.folder = Path(home) / FOLDER

    def path(self, key: str) -> Path:
        name = _SAFE.sub("_", key).strip("._") or "draft"
        return self.folder / f"{name}.json"

    def save(self, key: str, flow: Flow, based_on: int | None) -> Draft:
        """Write the draft of `key` (replacing the previous one atomically)."""
        saved_at = datetime.now(UTC)
        document = {"key": key, "based_on": based_on, "saved_at": saved_at.isoformat(),
                    "flow": flow.to_dict()}
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(key)
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".draft-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(document, file, separators=(",", ":"), ensure_ascii=False)
                if _sync_due(target):
                    file.flush()
                    os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return Draft(key, flow, based_on, saved_at)

    def load(self, key: str) -> Draft | None:
        """The draft of `key`, or None when there is none (or it cannot be read)."""
        return _read(self.path(key))

    def latest(self) -> Draft | None:
        """The most recently saved draft (what the Builder reopens), or None."""
        drafts = [draft for path in self._files() if (draft := _read(path)) is not None]
        return max(drafts, key=lambda draft: draft.saved_at, default=None)

    def discard(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def keys(self) -> list[str]:
        return sorted(draft.key for path in self._files() if (draft := _read(path)))

    def _files(self) -> list[Path]:
        return sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []


def _sync_due(target: Path) -> bool:
    now = time.monotonic()
    if now - _synced.get(target, -SYNC_SECONDS) < SYNC_SECONDS:
        return False
    _synced[target] = now
    return True


def _read(path: Path) -> Draft | None:
    """A draft file, or None when it is missing or unreadable (a draft never blocks the page;
    the file is left for the user to inspect)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        flow = loads(json.dumps(document["flow"]), "json")
        saved_at = datetime.fromisoformat(document["saved_at"])
    except (OSError, ValueError, KeyError, TypeError, FlowFileError):
        return None
    based_on = document.get("based_on")
    return Draft(str(document.get("key") or path.stem), flow,
                 based_on if isinstance(based_on, int) else None, saved_at)
