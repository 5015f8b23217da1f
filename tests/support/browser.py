"""Run a Streamlit script on a free loopback port and drive it with Debian's chromium.

The browser tests, the UI benchmarks and anyone scripting the workbench need the same two
things: a Streamlit server that is really up (its health endpoint answers) and stopped
afterwards, and a headless chromium launched from the system's executable with the flags a
closed network needs (no background traffic, no downloaded browser).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_streamlit(
    script: Path,
    *,
    cwd: Path,
    home: Path | None = None,
    log_path: Path | None = None,
    timeout: float = 90.0,
) -> Iterator[str]:
    """Start `streamlit run script` on 127.0.0.1 and yield its URL once it is healthy.

    `home` becomes MAWB_HOME; output goes to `log_path` (or nowhere). The server is stopped
    when the block ends, whatever happened in it.
    """
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.headless", "true", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    env = {**os.environ, **({"MAWB_HOME": str(home)} if home is not None else {})}
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(log_path.open("wb")) if log_path else subprocess.DEVNULL
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(url, process, timeout)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_health(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not become healthy at {url}")


def chromium_path() -> str | None:
    """Debian's chromium, as the system installs it (never a downloaded browser)."""
    return shutil.which("chromium")


def launch_chromium(playwright: Any) -> Any:
    """A headless chromium browser from `chromium_path()` for a Playwright session."""
    executable = chromium_path()
    if executable is None:
        raise FileNotFoundError("Debian chromium is not installed (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
