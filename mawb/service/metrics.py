"""The service's Prometheus metrics, rendered in the text exposition format (version 0.0.4).

A handful of counters and one histogram do not justify a client library: this module keeps
them in dicts under one lock and renders them on `GET /metrics`.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

FLUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self, spool_depth: Callable[[], int]) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._accepted: dict[str, int] = defaultdict(int)
        self._refused: dict[str, int] = defaultdict(int)
        self._duplicates = 0
        self._buckets = [0] * (len(FLUSH_BUCKETS) + 1)
        self._flush_sum = 0.0
        self._flush_count = 0
        self._spool_depth = spool_depth

    def request(self, method: str, route: str, status: int) -> None:
        with self._lock:
            self._requests[(method, route, status)] += 1

    def accepted(self, kind: str, count: int) -> None:
        with self._lock:
            self._accepted[kind] += count

    def refused(self, reason: str) -> None:
        with self._lock:
            self._refused[reason] += 1

    def duplicates(self, count: int) -> None:
        with self._lock:
            self._duplicates += count

    def flush(self, seconds: float) -> None:
        with self._lock:
            self._buckets[bisect.bisect_left(FLUSH_BUCKETS, seconds)] += 1
            self._flush_sum += seconds
            self._flush_count += 1

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP mawb_http_requests_total HTTP requests by route template and status.",
                "# TYPE mawb_http_requests_total counter",
                *(f'mawb_http_requests_total{{method="{m}",route="{_escape(r)}",'
                  f'status="{s}"}} {n}' for (m, r, s), n in sorted(self._requests.items())),
                "# HELP mawb_accepted_records_total Records durably spooled, by kind.",
                "# TYPE mawb_accepted_records_total counter",
                *(f'mawb_accepted_records_total{{kind="{k}"}} {n}'
                  for k, n in sorted(self._accepted.items())),
                "# HELP mawb_duplicate_events_total Events dropped as already accepted "
                "(same event_id).",
                "# TYPE mawb_duplicate_events_total counter",
                f"mawb_duplicate_events_total {self._duplicates}",
                "# HELP mawb_refused_requests_total Requests refused, by reason.",
                "# TYPE mawb_refused_requests_total counter",
                *(f'mawb_refused_requests_total{{reason="{_escape(k)}"}} {n}'
                  for k, n in sorted(self._refused.items())),
                "# HELP mawb_spool_flush_seconds Time to write and fsync one spool file.",
                "# TYPE mawb_spool_flush_seconds histogram",
            ]
            cumulative = 0
            for bound, count in zip((*FLUSH_BUCKETS, float("inf")), self._buckets, strict=True):
                cumulative += count
                label = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f'mawb_spool_flush_seconds_bucket{{le="{label}"}} {cumulative}')
            lines += [f"mawb_spool_flush_seconds_sum {self._flush_sum:.6f}",
                      f"mawb_spool_flush_seconds_count {self._flush_count}"]
        lines += ["# HELP mawb_spool_depth Spool files accepted but not yet loaded.",
                  "# TYPE mawb_spool_depth gauge", f"mawb_spool_depth {self._spool_depth()}"]
        return "\n".join(lines) + "\n"
