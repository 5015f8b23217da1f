"""Replay protection for `/hooks`: each webhook-id is accepted once.

Signatures and the timestamp tolerance are checked by `mawb.channels.webhooks.verify` (the
Standard Webhooks scheme, shared with outgoing webhooks). A message older than the tolerance is
refused there, so remembering the ids accepted within twice that window is enough to refuse
every replay; the window is also bounded in size, oldest ids forgotten first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

MAX_ID_LENGTH = 256


class ReplayGuard:
    """webhook-ids accepted in the last `window` seconds; a second use is a replay."""

    def __init__(self, window: float, max_ids: int = 200_000) -> None:
        self.window = window
        self.max_ids = max_ids
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, scope: str, webhook_id: str, now: float | None = None) -> bool:
        """Record `webhook_id` under `scope`; False when it was already claimed (a replay)."""
        current = time.monotonic() if now is None else now
        key = f"{scope}\n{webhook_id}"
        with self._lock:
            while self._seen:
                oldest, at = next(iter(self._seen.items()))
                if current - at <= 2 * self.window and len(self._seen) < self.max_ids:
                    break
                del self._seen[oldest]
            if key in self._seen:
                return False
            self._seen[key] = current
            return True

    def release(self, scope: str, webhook_id: str) -> None:
        """Forget a claim whose request failed before it was acknowledged (the sender retries)."""
        with self._lock:
            self._seen.pop(f"{scope}\n{webhook_id}", None)
