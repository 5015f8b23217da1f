"""The dispatcher: outbox rows with a connection, delivered with the store closed.

The tick's `_dispatch` applies the set-based rules (consent, suppression, quiet hours, caps,
render) and leaves the allowed rows of connected channels `queued`. `deliver` then, per batch:

1. **claim** in one short transaction: queued rows that are due, and `sending` rows whose lease
   expired (a dispatcher died mid-batch), become `sending` with a fresh `claim_id`,
   `lease_until` and `attempts + 1`; api rows whose same request was answered within the node's
   `cache_hours` are served from `http_cache` instead; rows whose contact unsubscribed or whose
   address got suppressed since they were queued are suppressed;
2. **close the store** and send through each connection's provider (bounded concurrency and the
   connection's `rate_per_second` live in the provider, which is kept for the whole call);
3. **record** the batch's results in one transaction, set-based over a registered results
   table: sent rows (and a `messages` row for message channels), retries (`queued` again with
   exponential backoff and jitter, or the provider's Retry-After), dead rows (permanent
   failures at once, retryable ones after MAX_ATTEMPTS) with the last error kept, API responses
   mapped into contact attributes and cached. Finished rows move to `outbox_done` in the same
   transaction (as in the claim), so a batch's store cost follows the open rows, not history.

Network I/O never happens while the store is open, so readers in other processes (the monitor,
`mawb status`) get in between batches. The idempotency key travels with every attempt: SMTP's
Message-ID and HTTP's Idempotency-Key / webhook-id are derived from it, so a row re-sent after an
expired lease is the same message to the receiver (see docs/architecture.md section 4 for which
receivers make that exactly-once).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from mawb.channels.base import OutboundMessage, SendResult
from mawb.engine.cohort import literal, quote
from mawb.engine.outbox import MAX_ATTEMPTS, archive_finished, suppress_due
from mawb.engine.render import column_types
from mawb.engine.store import now_utc, transaction, utc_naive
from mawb.model import MESSAGE_CHANNELS
from mawb.protected import is_protected

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import duckdb

    from mawb.channels.base import Provider
    from mawb.engine.workspace import Workspace

BATCH_SIZE = 1000
LEASE = timedelta(minutes=5)
BACKOFF_BASE = 30.0  # seconds before the first retry; doubles per attempt
BACKOFF_CAP = 6 * 3600.0
RETRY_AFTER_CAP = 86_400.0
REQUEST_KEY = ("md5(coalesce(o.payload->>'method', '') || ' ' || coalesce(o.payload->>'url', '')"
               " || ' ' || coalesce(o.payload->>'body', ''))")
_CLAIMED = ("idempotency_key, flow_id, version, contact_id, node_id, channel, recipient, subject, "
            "body, html, CAST(payload AS VARCHAR), CAST(headers AS VARCHAR), attempts, "
            "connection, audience")


# The stage name of delivery in `mawb step --node _deliver` (the compiled DAG's last task).
STAGE = "_deliver"


@dataclass
class DeliveryReport:
    """What one `deliver` call did, and where its time went (claim + record = overhead)."""

    batches: int = 0
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    cached: int = 0
    claim_seconds: float = 0.0
    send_seconds: float = 0.0
    record_seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def overhead(self) -> float:
        """Share of the wall time spent in the store (claim + record), not on the network."""
        total = self.claim_seconds + self.send_seconds + self.record_seconds
        return (self.claim_seconds + self.record_seconds) / total if total else 0.0


@dataclass(frozen=True)
class _Batch:
    claim_id: str
    rows: list[tuple[Any, ...]]
    cached: int


def deliver(workspace: Workspace, flow_ids: Iterable[str] | None = None,
            now: datetime | None = None, *, batch_size: int = BATCH_SIZE,
            lease: timedelta = LEASE, providers: dict[str, Provider] | None = None,
            max_batches: int | None = None,
            on_batch: Callable[[DeliveryReport], None] | None = None,
            partitions: Iterable[int] | None = None) -> DeliveryReport:
    """Deliver every claimable outbox row of `flow_ids` (all flows by default) and return a
    report. `now` pins the clock (virtual-time runs); by default each batch reads the wall
    clock. `providers` maps connection names to ready providers (else built from
    connections.yaml, once per call, so a connection's rate limit spans batches). `partitions`
    limits the call to those stores (a compiled DAG's per-partition `_deliver` task)."""
    flows = sorted(flow_ids) if flow_ids is not None else None
    report = DeliveryReport()
    resolver = _Providers(workspace, providers or {})
    for partition in (range(workspace.partitions) if partitions is None else partitions):
        while max_batches is None or report.batches < max_batches:
            moment = utc_naive(now) if now is not None else now_utc()
            started = time.perf_counter()
            batch = _claim(workspace, partition, flows, moment, batch_size, lease)
            claimed = time.perf_counter()
            report.claim_seconds += claimed - started
            report.cached += batch.cached
            if not batch.rows:
                break
            results = _send(batch.rows, resolver)
            sent = time.perf_counter()
            report.send_seconds += sent - claimed
            moment = utc_naive(now) if now is not None else now_utc()
            _record(workspace, partition, batch, results, moment, report)
            report.record_seconds += time.perf_counter() - sent
            report.batches += 1
            report.claimed += len(batch.rows)
            if on_batch is not None:
                on_batch(report)
    return report


def uses_connections(flow: Any) -> bool:
    """Whether any row of `flow` can go to a connection (else the sandbox does everything)."""
    return bool(flow.settings.connections) or any(
        node.params.get("connection") or node.params.get("crm", "local") != "local"
        for node in flow.nodes)


# -- claim -----------------------------------------------------------------------------------
def _flow_filter(flows: list[str] | None, alias: str = "") -> str:
    if flows is None:
        return "true"
    column = f"{alias}.flow_id" if alias else "flow_id"
    return f"{column} IN ({', '.join(literal(f) for f in flows)})" if flows else "false"


def _claim(workspace: Workspace, partition: int, flows: list[str] | None, now: datetime,
           batch_size: int, lease: timedelta) -> _Batch:
    claim_id = uuid.uuid4().hex
    with workspace.connection(partition) as connection:
        with transaction(connection):
            cached = _serve_from_cache(connection, flows, now)
            connection.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE claimable AS
                SELECT idempotency_key FROM outbox
                WHERE connection IS NOT NULL AND {_flow_filter(flows)}
                  AND ((status = 'queued' AND not_before <= ?)
                       OR (status = 'sending' AND lease_until < ?))
                ORDER BY not_before, idempotency_key LIMIT ?
                """,
                [now, now, batch_size],
            )
            # Consent may have changed since the tick queued them: look again, at these rows.
            suppress_due(connection, flows, now, status="queued", within="claimable")
            rows = connection.execute(
                f"""
                UPDATE outbox SET status = 'sending', claim_id = ?, lease_until = ?,
                       attempts = attempts + 1
                WHERE idempotency_key IN (SELECT idempotency_key FROM claimable)
                  AND status IN ('queued', 'sending')
                RETURNING {_CLAIMED}
                """,
                [claim_id, now + lease],
            ).fetchall()
            archive_finished(connection)  # served from the cache, suppressed since queued
    return _Batch(claim_id, rows, cached)


def _serve_from_cache(connection: duckdb.DuckDBPyConnection, flows: list[str] | None,
                      now: datetime) -> int:
    """api rows whose same request got an answer within the node's cache_hours: sent from
    the cache (provider_ref `cache`), the cached answer mapped into the contact."""
    any_cached = connection.execute("SELECT EXISTS (SELECT 1 FROM http_cache)").fetchone()
    if not (any_cached and any_cached[0]):
        return 0
    connection.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE from_cache AS
        SELECT o.idempotency_key AS key, h.response FROM outbox o
        JOIN (SELECT request_key, arg_max(response, fetched_at) AS response,
                     max(fetched_at) AS fetched_at FROM http_cache GROUP BY request_key) h
          ON h.request_key = {REQUEST_KEY}
        WHERE o.channel = 'api' AND o.status = 'queued' AND o.not_before <= ?
          AND {_flow_filter(flows, 'o')}
          AND TRY_CAST(o.payload->>'cache_hours' AS DOUBLE) > 0
          AND h.fetched_at > CAST(? AS TIMESTAMP) - to_microseconds(CAST(
                TRY_CAST(o.payload->>'cache_hours' AS DOUBLE) * 3600e6 AS BIGINT))
        """,
        [now, now],
    )
    row = connection.execute("SELECT count(*) FROM from_cache").fetchone()
    count = int(row[0]) if row else 0
    if count:
        connection.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?, provider_ref = 'cache', "
            "response = f.response, reason = NULL, error = NULL "
            "FROM from_cache f WHERE outbox.idempotency_key = f.key",
            [now],
        )
        _apply_responses(connection, "from_cache")
    return count


# -- send ------------------------------------------------------------------------------------
class _Providers:
    """One provider per connection name for the whole `deliver` call (built on first use)."""

    def __init__(self, workspace: Workspace, given: dict[str, Provider]) -> None:
        self.workspace = workspace
        self.built: dict[str, Provider | str] = dict(given)
        self._connections: dict[str, Any] | None = None
        self._links: Any = None

    def get(self, name: str) -> Provider | str:
        """The provider, or the reason there is none (an error every row of it gets)."""
        if name not in self.built:
            self.built[name] = self._build(name)
        return self.built[name]

    def _build(self, name: str) -> Provider | str:
        from mawb.channels.connections import LinkContext, load_connections, provider_for

        if self._connections is None:
            self._connections = load_connections(self.workspace.home)
            self._links = LinkContext.for_workspace(self.workspace.home)
        connection = self._connections.get(name)
        if connection is None:
            return (f"connection {name!r} is not configured in connections.yaml "
                    f"(configured: {', '.join(sorted(self._connections)) or 'none'})")
        try:
            return provider_for(connection, self._links)
        except ValueError as error:  # SecretError and friends: say which, never the value
            return f"connection {name!r}: {error}"


def outbound(row: tuple[Any, ...]) -> OutboundMessage:
    """The provider-facing message of one claimed row (`_CLAIMED` order)."""
    (key, flow_id, version, contact_id, node_id, channel, recipient, subject, body, html,
     payload, headers, attempts, _connection, audience) = row
    return OutboundMessage(
        idempotency_key=key, channel=channel, recipient=recipient, subject=subject, body=body,
        html=html, headers=json.loads(headers) if headers else {},
        payload=json.loads(payload) if payload else {}, attempt=int(attempts),
        contact_id=contact_id, flow_id=flow_id, node_id=node_id, flow_version=version,
        internal=audience == "internal")


def _send(rows: list[tuple[Any, ...]], resolver: _Providers) -> list[SendResult]:
    """Every claimed row's result; connections send concurrently, each through its provider."""
    groups: dict[str, list[OutboundMessage]] = {}
    for row in rows:
        groups.setdefault(row[13], []).append(outbound(row))

    providers = {name: resolver.get(name) for name in groups}  # built here, not in threads

    def run(name: str) -> list[SendResult]:
        messages = groups[name]
        provider = providers[name]
        if isinstance(provider, str):
            return [SendResult(m.idempotency_key, ok=False, retryable=True, error=provider)
                    for m in messages]
        try:
            results = provider.send_batch(messages)
        except Exception as error:  # a provider bug must not lose the batch: retry it
            return [SendResult(m.idempotency_key, ok=False, retryable=True,
                               error=f"{name}: {type(error).__name__}: {error}")
                    for m in messages]
        answered = {r.idempotency_key for r in results}
        return [*results, *(SendResult(m.idempotency_key, ok=False, retryable=True,
                                       error=f"{name}: the provider returned no result")
                            for m in messages if m.idempotency_key not in answered)]

    if len(groups) == 1:
        return run(next(iter(groups)))
    with ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="mawb-deliver") as pool:
        return [result for results in pool.map(run, list(groups)) for result in results]


# -- record ----------------------------------------------------------------------------------
def backoff_seconds(attempts: int, retry_after: float | None,
                    rng: random.Random | None = None) -> float:
    """Seconds until the next attempt: the provider's Retry-After when it gave one (capped),
    else BACKOFF_BASE * 2^(attempts - 1), capped, times a jitter in [0.5, 1.5)."""
    if retry_after is not None and retry_after >= 0:
        return min(float(retry_after), RETRY_AFTER_CAP)
    jitter = 0.5 + (rng or random).random()
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP) * jitter


_RESULT_COLUMNS = ["key", "ok", "retryable", "provider_ref", "error", "response", "retry_at",
                   "provider", "flow_id", "contact_id", "node_id", "channel", "recipient",
                   "subject", "body", "attempts"]


def _results_frame(batch: _Batch, results: list[SendResult], now: datetime) -> pd.DataFrame:
    """One row per result of this claim, with the claimed row's message fields alongside."""
    claimed = {row[0]: row for row in batch.rows}
    records = []
    for result in results:
        row = claimed.get(result.idempotency_key)
        if row is None:
            continue  # not of this claim (a provider answering for another key)
        retry_at = None
        if not result.ok and result.retryable:
            retry_at = now + timedelta(seconds=backoff_seconds(int(row[12]), result.retry_after))
        records.append((
            result.idempotency_key, bool(result.ok), bool(result.retryable), result.provider_ref,
            (result.error or "")[:1000] or None,
            json.dumps(result.response, default=str) if result.response else None, retry_at,
            row[13], row[1], row[3], row[4], row[5], row[6], row[7], row[8], int(row[12])))
    frame = pd.DataFrame.from_records(records, columns=_RESULT_COLUMNS)
    frame = frame.astype({"ok": bool, "retryable": bool})
    frame["retry_at"] = pd.to_datetime(frame["retry_at"])
    return frame


def _record(workspace: Workspace, partition: int, batch: _Batch, results: list[SendResult],
            now: datetime, report: DeliveryReport) -> None:
    """The batch's outcomes in one transaction, set-based over the registered results."""
    frame = _results_frame(batch, results, now)
    failed = frame[~frame["ok"]]
    with workspace.connection(partition) as connection:
        try:
            with transaction(connection):
                connection.register("results", frame)
                sent = _record_sent(connection, now)
                if len(failed):
                    _record_failures(connection, batch.claim_id)
                if frame["response"].notna().any():
                    _apply_responses(connection, "results")
                    _cache_responses(connection, now)
                archive_finished(connection)  # after the responses, which read the rows
        finally:
            connection.unregister("results")
    retry = failed["retryable"] & (failed["attempts"] < MAX_ATTEMPTS)
    report.sent += sent
    report.retried += int(retry.sum())
    report.dead += int((~retry).sum())
    for error in failed["error"].dropna():
        head = str(error).split(" (")[0][:80]
        report.errors[head] = report.errors.get(head, 0) + 1


def _record_sent(connection: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """Accepted rows become sent, and messages are recorded for exactly the rows this
    transaction moved from sending to sent (a row re-claimed after its lease, then recorded
    by both dispatchers, is recorded once). Any claim may record a success: it happened."""
    moved = connection.execute(
        """
        UPDATE outbox SET status = 'sent', sent_at = ?, provider_ref = r.provider_ref,
               error = NULL, reason = NULL, claim_id = NULL, lease_until = NULL,
               response = CAST(r.response AS JSON)
        FROM results r
        WHERE outbox.idempotency_key = r.key AND r.ok AND outbox.status = 'sending'
        RETURNING idempotency_key
        """,
        [now],
    ).fetchall()
    if not moved:
        return 0
    accepted = connection.execute("SELECT count(*) FROM results WHERE ok").fetchone()
    # Usually every accepted row moved; otherwise only the moved ones are recorded.
    only_moved = "" if accepted and accepted[0] == len(moved) else \
        "AND key IN (SELECT unnest(?::VARCHAR[]))"
    connection.execute(
        f"""
        INSERT INTO messages (idempotency_key, flow_id, contact_id, node_id, channel, recipient,
                              subject, body, sent_at, provider)
        SELECT key, flow_id, contact_id, node_id, channel, recipient, subject, body, ?, provider
        FROM results
        WHERE ok AND channel IN ({', '.join(literal(c) for c in MESSAGE_CHANNELS)}) {only_moved}
        """,
        [now, [row[0] for row in moved]] if only_moved else [now],
    )
    return len(moved)


def _record_failures(connection: duckdb.DuckDBPyConnection, claim_id: str) -> None:
    """Retries wait (queued, later not_before), the rest are dead with their last error.
    Only for this claim: a row re-claimed since belongs to its new claim."""
    connection.execute(
        f"""
        UPDATE outbox SET
            status = CASE WHEN r.retryable AND outbox.attempts < {MAX_ATTEMPTS} THEN 'queued'
                          ELSE 'dead' END,
            reason = CASE WHEN NOT r.retryable THEN 'rejected'
                          WHEN outbox.attempts >= {MAX_ATTEMPTS} THEN 'max_attempts'
                          ELSE 'retry' END,
            not_before = CASE WHEN r.retryable AND outbox.attempts < {MAX_ATTEMPTS}
                              THEN CAST(r.retry_at AS TIMESTAMP) ELSE outbox.not_before END,
            error = r.error, claim_id = NULL, lease_until = NULL
        FROM results r
        WHERE outbox.idempotency_key = r.key AND NOT r.ok AND outbox.claim_id = ?
        """,
        [claim_id],
    )


def _cache_responses(connection: duckdb.DuckDBPyConnection, now: datetime) -> None:
    connection.execute(
        f"""
        INSERT INTO http_cache (request_key, node_id, response, fetched_at)
        SELECT {REQUEST_KEY}, o.node_id, CAST(r.response AS JSON), ? FROM outbox o
        JOIN results r ON o.idempotency_key = r.key
        WHERE r.ok AND r.response IS NOT NULL AND o.channel = 'api'
          AND TRY_CAST(o.payload->>'cache_hours' AS DOUBLE) > 0
        """,
        [now],
    )


def _apply_responses(connection: duckdb.DuckDBPyConnection, table: str) -> None:
    """Mapped API response fields (`{attribute: value}` in `table`.response, keyed by `key`)
    into the contacts' attributes, one set-based UPDATE per attribute."""
    rows = connection.execute(
        f"SELECT DISTINCT unnest(json_keys(CAST(t.response AS JSON))) FROM {table} t "
        f"JOIN outbox o ON o.idempotency_key = t.key "
        f"WHERE t.response IS NOT NULL AND o.contact_id IS NOT NULL AND o.channel = 'api'"
    ).fetchall()
    names = sorted(str(row[0]) for row in rows)
    if not names:
        return
    types = column_types(connection)
    for name in names:
        if is_protected(name) or not name.isidentifier():
            continue  # the params model refuses these; a response never writes them
        if name not in types:
            connection.execute(f"ALTER TABLE contacts ADD COLUMN {quote(name)} VARCHAR")
            types[name] = "VARCHAR"
        path = literal(f"$.{json.dumps(name)}")
        connection.execute(
            f"""
            UPDATE contacts SET {quote(name)} = TRY_CAST(v.value AS {types[name]})
            FROM (SELECT o.contact_id, json_extract_string(CAST(t.response AS JSON), {path})
                         AS value
                  FROM {table} t JOIN outbox o ON o.idempotency_key = t.key
                  WHERE o.channel = 'api' AND o.contact_id IS NOT NULL
                    AND json_extract(CAST(t.response AS JSON), {path}) IS NOT NULL) v
            WHERE contacts.contact_id = v.contact_id
            """
        )
