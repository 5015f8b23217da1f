"""`mawb serve`: the always-on service of one workspace (intake API + the tick loop).

One process: uvicorn serves the intake app (`mawb.service.app`) and the service's command
routes, and a background thread runs the loop (`mawb.service.loop`) that is the workspace's one
writer. `service.json` in the workspace announces it (so the CLI and the pages route their writes
through it) and is removed on exit; SIGTERM or Ctrl-C stops both cleanly.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Annotated

import typer

from mawb.cli import HomeOpt, _home, expected_failures, fail


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    home: HomeOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default)")] = (
        "127.0.0.1"),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free port)")] = 8600,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "warning",
) -> None:
    """Serve the intake API and tick every live flow until stopped (Ctrl-C)."""
    from mawb.engine.workspace import Workspace
    from mawb.service import client, commands
    from mawb.service.app import create_app
    from mawb.service.loop import ServiceLoop, run_in_thread
    from mawb.service.run import bind
    from mawb.service.run import serve as serve_app

    home = _home(home)
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    running = client.running(home)
    if running is not None:
        raise fail(f"{running.describe()}; stop it first or serve another workspace")
    with expected_failures(str(home)):
        Workspace(home)  # creates the folder and manifest, migrates nothing yet
        sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    loop = ServiceLoop(home)
    app = create_app(home, on_accepted=loop.wake, extra_routers=[commands.router(loop)])
    thread = run_in_thread(loop)

    def started() -> None:
        client.announce(home, bound_host, bound_port)
        typer.echo(f"mawb service for {home} listening on http://{bound_host}:{bound_port} "
                   f"(pid {os.getpid()}); Ctrl-C stops it")

    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal: make that
    # an exception here, so the loop is stopped and service.json removed before exiting.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        serve_app(app, sock, log_level=log_level, on_started=started)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        loop.stop()
        thread.join(timeout=30)
        client.retire(home)
        typer.echo("mawb service stopped", err=True)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)
