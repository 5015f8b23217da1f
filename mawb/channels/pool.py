"""Bounded concurrency and pacing shared by the providers.

A batch runs on a small thread pool (network waits release the GIL, so threads are enough and
keep smtplib and httpx's sync clients usable). The rate limiter lives on the provider, so a
dispatcher that keeps one provider per connection paces across batches too.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from mawb.channels.base import SendResult

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

T = TypeVar("T")


class RateLimiter:
    """At most `rate` acquisitions per second across threads (None: unpaced)."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self._interval
        if slot > now:
            time.sleep(slot - now)


def run_bounded(items: Sequence[T], work: Callable[[T], list[SendResult]],
                concurrency: int) -> list[SendResult]:
    """`work` over `items` on at most `concurrency` threads; results keep the items' order.

    A bug in `work` must not lose the results of messages already sent, so an exception becomes
    a retryable failure for that item's messages (the error names it) instead of propagating.
    """
    def guarded(item: T) -> list[SendResult]:
        try:
            return work(item)
        except Exception as error:  # reported per message, see docstring
            return [SendResult(key, ok=False, retryable=True,
                               error=f"internal error: {type(error).__name__}: {error}")
                    for key in _keys(item)]

    if len(items) <= 1 or concurrency <= 1:
        return [result for item in items for result in guarded(item)]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items)),
                            thread_name_prefix="mawb-send") as pool:
        return [result for results in pool.map(guarded, items) for result in results]


def _keys(item: object) -> list[str]:
    if isinstance(item, list):
        return [key for element in item for key in _keys(element)]
    return [item.idempotency_key]  # type: ignore[attr-defined]


def chunks(items: Sequence[T], count: int) -> list[list[T]]:
    """`items` in at most `count` contiguous, nearly equal chunks (one per SMTP session)."""
    count = max(1, min(count, len(items)))
    size, extra = divmod(len(items), count)
    out, start = [], 0
    for index in range(count):
        end = start + size + (index < extra)
        out.append(list(items[start:end]))
        start = end
    return [chunk for chunk in out if chunk]
