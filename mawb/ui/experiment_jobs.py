"""A simulation or sweep running beside the page, so the page stays usable while it computes.

The Experiments page starts a `Job` in a thread and polls it: the progress shows, a Cancel
button sets the job's flag, which `mawb.simulate` checks between two ticks (it stops with
`SimulationCancelled`), and the last result stays on the page until the new one is done.
The job never touches Streamlit; the page reads its fields.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mawb.simulate import SimulationCancelled

if TYPE_CHECKING:
    from collections.abc import Callable

    Work = Callable[[Callable[[float], None], Callable[[], bool]], Any]
    """The computation: called with (on_progress, cancel), returns the result."""


@dataclass
class Job:
    """One background computation: its progress (0..1) and, once done, result or outcome."""

    kind: str  # "simulation" or "sweep"
    flow_id: str
    description: str
    progress: float = 0.0
    result: Any = None
    error: str | None = None
    cancelled: bool = False
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def cancel(self) -> None:
        """Ask the run to stop at its next tick."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, work: Work) -> None:
        try:
            self.result = work(self._advance, self._stop.is_set)
            self.progress = 1.0
        except SimulationCancelled:
            self.cancelled = True
        except Exception as error:  # shown on the page, not lost in a thread
            self.error = f"{type(error).__name__}: {error}"

    def _advance(self, done: float) -> None:
        self.progress = max(self.progress, min(1.0, done))


def start(kind: str, flow_id: str, description: str, work: Work) -> Job:
    """Run `work` in a daemon thread and return its job at once."""
    job = Job(kind, flow_id, description)
    job._thread = threading.Thread(target=job._run, args=(work,), daemon=True,
                                   name=f"mawb-experiment-{kind}")
    job._thread.start()
    return job
