"""Talking to the service of a workspace from another process on the same machine.

While `mawb serve` runs it is the only writer of the workspace's stores (docs/architecture.md,
section 2). It announces itself in `service.json` (pid, host, port, started_at), removed when it
stops; `running(home)` also checks that the pid is alive, so a file left by a killed service
is not mistaken for a running one. Another process that wants to write (the CLI, the pages)
drops a command file into the spool (`submit`) — durably, exactly as the intake does — and the
service applies it within about a second; `outcomes` then reads what became of each command
from `service_commands` through a short read-only connection.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mawb.engine import lifecycle, spool
from mawb.service.spool import write_batch

if TYPE_CHECKING:
    from pathlib import Path

SERVICE_FILE = "service.json"


@dataclass(frozen=True)
class ServiceInfo:
    pid: int
    host: str
    port: int
    started_at: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def describe(self) -> str:
        return f"a service is running for this workspace (pid {self.pid}, port {self.port})"


def announce(home: Path, host: str, port: int) -> ServiceInfo:
    """Write `service.json` atomically (the service calls this once it listens)."""
    info = ServiceInfo(os.getpid(), host, port, datetime.now(UTC).isoformat())
    tmp = home / f".{SERVICE_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(info.__dict__) + "\n", encoding="utf-8")
    os.replace(tmp, home / SERVICE_FILE)
    return info


def retire(home: Path) -> None:
    """Remove `service.json` if it is this process's own."""
    found = _read(home)
    if found is not None and found.pid == os.getpid():
        (home / SERVICE_FILE).unlink(missing_ok=True)


def running(home: Path) -> ServiceInfo | None:
    """The service of `home`, if one announced itself and its process is alive."""
    info = _read(home)
    if info is None or not _alive(info.pid):
        return None
    return info


def _read(home: Path) -> ServiceInfo | None:
    try:
        data = json.loads((home / SERVICE_FILE).read_text(encoding="utf-8"))
        return ServiceInfo(int(data["pid"]), str(data["host"]), int(data["port"]),
                           str(data["started_at"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def command(name: str, **fields: Any) -> dict[str, Any]:
    """A spool command record, signed with who asks (`MAWB_USER` or the OS user)."""
    return {"kind": "command", "command": name, "by": lifecycle.actor(),
            "at": datetime.now(UTC).isoformat(), **fields}


def submit(home: Path, records: list[dict[str, Any]]) -> str:
    """Queue records for the service, durably; returns the spool file name (the receipt)."""
    return write_batch(spool.spool_dir(home), records)


def outcomes(home: Path, receipt: str, timeout: float = 20.0) -> list[tuple[Any, ...]] | None:
    """(line, command, status, detail) of each command in `receipt` once the service applied
    them, or None if it has not within `timeout` seconds."""
    from mawb.engine.workspace import Workspace

    workspace = Workspace(home)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not (spool.spool_dir(home) / receipt).exists():
            with workspace.connection(0, read_only=True) as connection:
                found = connection.execute(
                    "SELECT line, command, status, detail FROM service_commands "
                    "WHERE file_name = ? ORDER BY line", [receipt]).fetchall()
            if found:
                return found
        time.sleep(0.1)
    return None


def ask(home: Path, records: list[dict[str, Any]], waiting: str, done: str | None = None,
        timeout: float = 10.0) -> tuple[bool, str]:
    """Queue commands and wait (bounded) for the service to apply them: (False, the refusal)
    when one failed, (True, `done` or the last command's outcome) when all applied, (True,
    `waiting`) when the service has not got to them within `timeout` (they stay queued and
    will apply)."""
    applied = outcomes(home, submit(home, records), timeout=timeout)
    if applied is None:
        return True, waiting
    failed = [row for row in applied if str(row[2]) == "failed"]
    if failed:
        return False, f"The service refused: {failed[0][3]}"
    return True, done or str(applied[-1][3])
