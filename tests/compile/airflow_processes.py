"""A real Airflow 3 on loopback for one test: scheduler (LocalExecutor), API server, DAG processor.

Everything a compiled DAG needs to run as in production, on a throw-away AIRFLOW_HOME: the
scheduler queues tasks into LocalExecutor workers, which run them through the API server's
execution API (Airflow 3 tasks never open the metadata database), and the DAG processor
parses the dags folder into the database. The metadata database is a copy of the session's
migrated SQLite file (a fresh migration costs ~20 s). The test talks to Airflow through its
REST API, the way an operator would. Every process is started in its own process group and
the whole group is stopped when the block ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

AIRFLOW = [sys.executable, "-m", "airflow"]
SIMPLE_AUTH = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def airflow_env(home: Path, dags: Path, port: int) -> dict[str, str]:
    """The environment of every process: nothing inherited from the session's own Airflow."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    url = f"http://127.0.0.1:{port}"
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    })  # fmt: skip
    return env


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a migrated SQLite metadata database (SQLite's backup API)."""
    with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(
        sqlite3.connect(target)
    ) as dst:
        src.backup(dst)


@contextlib.contextmanager
def running_airflow(home: Path, env: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start the API server, scheduler and DAG processor; stop every one of them afterwards."""
    port = env["AIRFLOW__API__PORT"]
    commands = {
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", port, "--workers", "1"],
        "scheduler": ["scheduler", "--skip-serve-logs"],  # its log server would bind 0.0.0.0
        "dag-processor": ["dag-processor"],
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, arguments in commands.items():
            log = (home / f"{name}.log").open("wb")
            processes.append(subprocess.Popen(
                [*AIRFLOW, *arguments], env=env, cwd=home, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True))
            log.close()
        yield processes
    finally:
        _stop_groups(processes)


def _stop_groups(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process group we started (workers included), SIGKILL what is left 10 s on."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the group: children outlive their parent
        process.wait()


class RestClient:
    """Airflow's REST API (/api/v2) on loopback; all-admins auth needs no token."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}/api/v2"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read() or b"null")

    def wait_for(self, path: str, deadline: float, processes: list[subprocess.Popen[bytes]],
                 ready: Any = bool) -> Any:
        """GET `path` until `ready(answer)`, failing fast if an Airflow process died."""
        while True:
            died = [p.args for p in processes if p.poll() is not None]
            assert not died, f"Airflow process exited early: {died}"
            try:
                answer = self.call("GET", path)
                if ready(answer):
                    return answer
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                answer = None
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path}: not ready in time, last answer {answer!r}")
            time.sleep(0.5)
