"""Limits of the intake service, in one place so tests and deployments can tighten them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSettings:
    """Bounds on what one request may carry and how far its clock may be from ours.

    Events older than `max_past_seconds` belong in a backfill (`mawb ingest FILE`), not the
    live API; ones further ahead than `max_future_seconds` are a client clock or unit error
    (milliseconds sent as seconds) that would otherwise sit unnoticed in the store.
    """

    max_body_bytes: int = 1 << 20
    max_batch: int = 1000
    max_properties_bytes: int = 16 << 10
    max_properties_depth: int = 8
    max_future_seconds: float = 3600.0
    max_past_seconds: float = 30 * 86400.0
    webhook_tolerance_seconds: float = 300.0
    dedupe_window: int = 200_000
    default_rate: float = 100.0  # requests per second per key when a key names none
    flush_max_records: int = 20_000
