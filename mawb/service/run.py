"""Run an ASGI app under uvicorn on a socket bound first, so port 0 (any free port) works.

`python -m mawb.service.run --home H [--port 0]` serves the intake app alone, without the tick
loop: what the tests and `bench/ingest.py` start in a subprocess (`intake_process`), and kill.
It prints `listening on http://HOST:PORT` once the server accepts connections. `mawb serve`
runs the same app together with the tick loop.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: the kernel picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(app: Any, sock: socket.socket, *, log_level: str = "warning",
          on_started: Callable[[], None] | None = None) -> None:
    """Serve `app` on `sock` until SIGINT/SIGTERM (uvicorn's graceful shutdown)."""
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on",
                            timeout_keep_alive=30, backlog=2048)
    server = uvicorn.Server(config)
    if on_started is not None:
        original = server.startup

        async def startup(sockets: list[socket.socket] | None = None) -> None:
            await original(sockets=sockets)
            on_started()

        server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    from mawb.service.app import create_app
    from mawb.service.settings import ServiceSettings

    parser = argparse.ArgumentParser(description="Serve the mawb intake app (no tick loop).")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8600)
    parser.add_argument("--settings", default="{}", help="ServiceSettings fields as JSON")
    args = parser.parse_args(argv)
    settings = ServiceSettings(**json.loads(args.settings))
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    app = create_app(args.home, settings=settings)

    def started() -> None:
        sys.stdout.write(f"listening on http://{host}:{port}\n")
        sys.stdout.flush()

    serve(app, sock, on_started=started)


@contextlib.contextmanager
def intake_process(home: Path, settings: dict[str, Any] | None = None, *,
                   env: dict[str, str] | None = None,
                   timeout: float = 30.0) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start the intake app in a subprocess on a free loopback port; yield (url, process).

    The process is stopped (SIGTERM, then SIGKILL) when the block ends, unless it has already
    exited (a test may SIGKILL it itself).
    """
    command = [sys.executable, "-m", "mawb.service.run", "--home", str(home), "--port", "0",
               "--settings", json.dumps(settings or {})]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        command, stdout=subprocess.PIPE, env={**os.environ, **(env or {})})
    try:
        yield _wait_listening(process, timeout), process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _wait_listening(process: subprocess.Popen[bytes], timeout: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                line = process.stdout.readline().decode()
                if line.startswith("listening on "):
                    return line.removeprefix("listening on ").strip()
                if not line and process.poll() is not None:
                    break
            elif process.poll() is not None:
                break
    raise RuntimeError(f"the intake service did not start (exit code {process.poll()})")


if __name__ == "__main__":
    main()
