"""The writing half of the intake spool: accepted records, durably on disk before the 202.

A batch is written to `spool/.tmp/<name>`, fsynced, renamed to `spool/<name>.jsonl` and the
folder fsynced (docs/architecture.md, section 5). The loader only ever lists `spool/*.jsonl`, so
a file is either whole under its final name or invisible; a crash leaves at most a stray tmp
file, which was never acknowledged and is removed when the next writer starts.

Group commit: fsync costs milliseconds, so one fsync per request would cap intake at a few
hundred requests a second. `SpoolWriter` is one thread that takes whatever requests queued up
while the previous flush was on disk, writes them as one file, and only then resolves each
request's future, so every 202 still means "on disk" while the fsync cost is shared.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import queue
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

TMP_DIR = ".tmp"
SUFFIX = ".jsonl"

log = logging.getLogger(__name__)
_last_stamp = ""
_stamp_lock = threading.Lock()


def _name() -> str:
    """`<UTC time>-<random>`: sorts by arrival, and never repeats within this process."""
    global _last_stamp
    with _stamp_lock:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        _last_stamp = max(stamp, _last_stamp)
        return f"{_last_stamp}-{secrets.token_hex(4)}"


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# Characters JSON leaves raw that str.splitlines() (and other line readers) treat as line
# breaks: escaped, so a record is always exactly one line whatever reads the file.
_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def encode(records: list[dict[str, Any]]) -> bytes:
    """One compact JSON object per line (UTF-8, no NaN: the loader reads strict JSON)."""
    text = "".join([_ENCODER.encode(record) + "\n" for record in records])
    for raw, escaped in _LINE_BREAKS.items():
        if raw in text:
            text = text.replace(raw, escaped)
    return text.encode()


def write_batch(spool_dir: Path, records: list[dict[str, Any]]) -> str:
    """Write `records` as one spool file, durably; return its file name (`<name>.jsonl`)."""
    return write_encoded(spool_dir, encode(records))


def write_encoded(spool_dir: Path, data: bytes) -> str:
    """`write_batch` for records already encoded as JSON lines."""
    tmp_dir = spool_dir / TMP_DIR
    tmp_dir.mkdir(parents=True, exist_ok=True)
    name = _name() + SUFFIX
    tmp = tmp_dir / name
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view):]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.rename(tmp, spool_dir / name)
    _fsync_dir(spool_dir)
    return name


def spool_depth(spool_dir: Path) -> int:
    """Files accepted but not yet loaded (what the loader still has to do)."""
    try:
        with os.scandir(spool_dir) as entries:
            return sum(1 for entry in entries if entry.name.endswith(SUFFIX) and entry.is_file())
    except FileNotFoundError:
        return 0


def remove_stray_tmp(spool_dir: Path) -> int:
    """Delete tmp files a killed writer left (never acknowledged); return how many."""
    tmp_dir = spool_dir / TMP_DIR
    removed = 0
    if tmp_dir.is_dir():
        for path in tmp_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed


_Item = tuple[list[dict[str, Any]], bytes, "concurrent.futures.Future[str]"]


class SpoolWriter:
    """The one thread that writes spool files; `submit` returns a future resolved once durable.

    `on_flush(records, seconds)` runs after each file is on disk and every waiting request has
    been resolved (metrics, waking the tick loop); it runs on this thread, so it must be quick.
    """

    def __init__(self, spool_dir: Path, *, max_records: int = 20_000,
                 on_flush: Callable[[list[dict[str, Any]], float], None] | None = None) -> None:
        self.spool_dir = spool_dir
        self.max_records = max_records
        self.on_flush = on_flush
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.stray_removed = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.stray_removed = remove_stray_tmp(self.spool_dir)
        self._thread = threading.Thread(target=self._run, name="mawb-spool-writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Flush what is queued, then end the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def submit(self, records: list[dict[str, Any]]) -> concurrent.futures.Future[str]:
        """Queue records for the next flush. They are encoded here, in the caller's thread, so
        a record that cannot be written fails its own request, never the others in a flush."""
        data = encode(records)
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        if self._thread is None:
            future.set_exception(RuntimeError("the spool writer is not running"))
        else:
            self._queue.put((records, data, future))
        return future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            items = [first]
            count = len(first[0])
            while count < self.max_records:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                items.append(item)
                count += len(item[0])
            self._flush(items)

    def _flush(self, items: list[_Item]) -> None:
        records = [record for batch, _, _ in items for record in batch]
        started = time.perf_counter()
        try:
            name = write_encoded(self.spool_dir, b"".join(data for _, data, _ in items))
        except Exception as error:  # a full or failing disk: every waiting request learns it
            log.exception("spool write failed")
            for _, _, future in items:
                future.set_exception(error)
            return
        seconds = time.perf_counter() - started
        for _, _, future in items:
            future.set_result(name)
        if self.on_flush is not None:
            try:
                self.on_flush(records, seconds)
            except Exception:  # the records are durable; a failing hook must not lose the writer
                log.exception("spool on_flush hook failed")
