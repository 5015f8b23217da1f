"""The outbox: where every side effect waits until it is safe and allowed to happen.

Node steps only insert outbox rows (keyed by idempotency key). `dispatch` then, set-based:
suppresses messages to unsubscribed / do-not-contact contacts and to channels without
consent, defers messages that fall in the contact's quiet hours to the end of them, holds or
skips messages over the flow's frequency cap, renders what the step could not render in SQL,
and hands the rest to the channel's provider. The default provider is the sandbox, which
records messages in the `messages` table in the same transaction that marks them sent, so a
crash can never send twice. Providers that fail are retried with exponential backoff, then
dead-lettered (status `dead`) where the monitor shows them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from mawb.engine.cohort import literal
from mawb.engine.store import contact_column_names
from mawb.personalize import TemplateError, render

if TYPE_CHECKING:
    import duckdb

    from mawb.model import Flow

MAX_ATTEMPTS = 5
CONSENT_COLUMNS = {"email": "email_consent", "sms": "sms_consent", "web_push": "push_consent"}


class Provider(Protocol):
    """Delivers one outbox row; returns a provider reference or raises on failure."""

    name: str

    def send(self, row: dict[str, Any]) -> str: ...


def suppress_without_consent(connection: duckdb.DuckDBPyConnection, flow: Flow,
                             now: datetime) -> None:
    columns = contact_column_names(connection)
    for channel, column in CONSENT_COLUMNS.items():
        consent = f'OR NOT coalesce(c."{column}", true)' if column in columns else ""
        connection.execute(
            f"""
            UPDATE outbox SET status = 'suppressed', error = 'no consent or unsubscribed'
            FROM contacts c
            WHERE outbox.contact_id = c.contact_id AND outbox.flow_id = ?
              AND outbox.status = 'pending' AND outbox.channel = ? AND outbox.not_before <= ?
              AND (coalesce(c.unsubscribed, false) OR coalesce(c.do_not_contact, false) {consent})
            """,
            [flow.id, channel, now],
        )


def defer_quiet_hours(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime) -> None:
    quiet = flow.settings.quiet_hours
    if quiet is None:
        return
    start = _minutes(quiet.start)
    end = _minutes(quiet.end)
    zone = literal(flow.settings.timezone)
    if "timezone" in contact_column_names(connection):
        zone = (f"coalesce(CASE WHEN c.timezone IN (SELECT name FROM pg_timezone_names()) "
                f"THEN c.timezone END, {zone})")
    moment = literal(now.isoformat(sep=" "))
    local = f"timezone({zone}, CAST({moment} AS TIMESTAMP) AT TIME ZONE 'UTC')"
    minute = f"(hour({local}) * 60 + minute({local}))"
    inside = (f"({minute} >= {start} AND {minute} < {end})" if start < end
              else f"({minute} >= {start} OR {minute} < {end})")
    end_local = (f"date_trunc('day', {local}) + INTERVAL {end} MINUTE + "
                 f"CASE WHEN {minute} >= {end} THEN INTERVAL 1 DAY ELSE INTERVAL 0 DAY END")
    connection.execute(
        f"""
        UPDATE outbox SET not_before = timezone('UTC', timezone({zone}, {end_local}))
        FROM contacts c
        WHERE outbox.contact_id = c.contact_id AND outbox.flow_id = ? AND outbox.status = 'pending'
          AND outbox.channel IN ('email', 'sms', 'web_push') AND outbox.not_before <= ?
          AND {inside}
        """,
        [flow.id, now],
    )


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def apply_frequency_cap(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime) -> None:
    """Hold (defer) or skip contact messages beyond max_messages in any per_days window."""
    cap = flow.settings.frequency_cap
    if cap is None:
        return
    window = timedelta(days=cap.per_days)
    connection.execute(
        """
        CREATE OR REPLACE TEMP TABLE over_cap AS
        SELECT o.idempotency_key, s.oldest
        FROM (SELECT idempotency_key, contact_id,
                     row_number() OVER (PARTITION BY contact_id
                                        ORDER BY created_at, idempotency_key) AS rank
              FROM outbox WHERE flow_id = ? AND status = 'pending' AND not_before <= ?
                AND channel IN ('email', 'sms', 'web_push')) o
        JOIN (SELECT contact_id, count(*) AS sent, min(sent_at) AS oldest FROM messages
              WHERE sent_at > ? AND channel IN ('email', 'sms', 'web_push')
              GROUP BY contact_id) s USING (contact_id)
        WHERE s.sent + o.rank > ?
        UNION ALL
        SELECT idempotency_key, NULL FROM (
              SELECT idempotency_key, contact_id,
                     row_number() OVER (PARTITION BY contact_id
                                        ORDER BY created_at, idempotency_key) AS rank
              FROM outbox WHERE flow_id = ? AND status = 'pending' AND not_before <= ?
                AND channel IN ('email', 'sms', 'web_push')) o
        WHERE rank > ? AND contact_id NOT IN (SELECT contact_id FROM messages WHERE sent_at > ?)
        """,
        [flow.id, now, now - window, cap.max_messages, flow.id, now, cap.max_messages,
         now - window],
    )
    if cap.mode.value == "skip":
        connection.execute(
            "UPDATE outbox SET status = 'skipped', error = 'frequency cap' "
            "WHERE idempotency_key IN (SELECT idempotency_key FROM over_cap)"
        )
    else:
        connection.execute(
            "UPDATE outbox SET not_before = coalesce(o.oldest, CAST(? AS TIMESTAMP)) + ? "
            "FROM over_cap o WHERE outbox.idempotency_key = o.idempotency_key",
            [now, window],
        )


def render_pending(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime) -> None:
    """Render, in Python, the messages whose templates were too rich for SQL rendering."""
    rows = connection.execute(
        """
        SELECT o.idempotency_key, o.node_id, c.* FROM outbox o JOIN contacts c USING (contact_id)
        WHERE o.flow_id = ? AND o.status = 'pending' AND o.not_before <= ?
          AND o.channel IN ('email', 'sms', 'web_push')
          AND (o.body IS NULL OR (o.channel <> 'sms' AND o.subject IS NULL))
        """,
        [flow.id, now],
    ).fetchdf()
    if rows.empty:
        return
    fields = {"email": ("subject", "body"), "sms": ("body", "body"),
              "web_push": ("title", "body")}
    updates = []
    nodes = {node.id: node for node in flow.nodes}
    for record in rows.to_dict("records"):
        node = nodes.get(record["node_id"])
        if node is None:
            continue
        context = {**flow.params, **record}
        channel = {"email_send": "email", "sms_send": "sms", "web_push": "web_push"}[node.type]
        first, second = fields[channel]
        try:
            subject = render(str(node.params.get(first, "")), context)
            body = render(str(node.params.get(second, "")), context)
        except TemplateError as error:
            updates.append((None, None, f"render failed: {error}", record["idempotency_key"]))
            continue
        updates.append((subject, body, None, record["idempotency_key"]))
    connection.executemany(
        "UPDATE outbox SET subject = ?, body = ?, error = ?, "
        "status = CASE WHEN ? IS NULL THEN status ELSE 'failed' END WHERE idempotency_key = ?",
        [(s, b, e, e, k) for s, b, e, k in updates],
    )


def send_sandbox(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime) -> int:
    """Record every due message as sent (set-based); returns how many."""
    connection.execute(
        """
        CREATE OR REPLACE TEMP TABLE sending AS
        SELECT * FROM outbox WHERE flow_id = ? AND status = 'pending' AND not_before <= ?
        """,
        [flow.id, now],
    )
    connection.execute(
        """
        INSERT INTO messages
        SELECT idempotency_key, flow_id, contact_id, node_id, channel, recipient, subject, body,
               ?, 'sandbox'
        FROM sending WHERE idempotency_key NOT IN (SELECT idempotency_key FROM messages)
        """,
        [now],
    )
    connection.execute(
        "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?, "
        "provider_ref = 'sandbox:' || idempotency_key "
        "WHERE idempotency_key IN (SELECT idempotency_key FROM sending)",
        [now],
    )
    row = connection.execute("SELECT count(*) FROM sending").fetchone()
    return int(row[0]) if row else 0


def send_with(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime,
              providers: dict[str, Provider]) -> None:
    """Deliver due rows of channels with a real provider, one at a time (network-bound)."""
    channels = list(providers)
    if not channels:
        return
    rows = connection.execute(
        "SELECT * FROM outbox WHERE flow_id = ? AND status = 'pending' AND not_before <= ? "
        "AND list_contains(?, channel)",
        [flow.id, now, channels],
    ).fetchdf()
    for record in rows.to_dict("records"):
        provider = providers[record["channel"]]
        try:
            reference = provider.send(record)
        except Exception as error:
            attempts = int(record["attempts"]) + 1
            status = "dead" if attempts >= MAX_ATTEMPTS else "pending"
            retry_at = now + timedelta(minutes=2 ** attempts)
            connection.execute(
                "UPDATE outbox SET attempts = ?, status = ?, error = ?, not_before = ? "
                "WHERE idempotency_key = ?",
                [attempts, status, str(error)[:500], retry_at, record["idempotency_key"]],
            )
            continue
        connection.execute(
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [record["idempotency_key"], record["flow_id"], record["contact_id"],
             record["node_id"], record["channel"], record["recipient"], record["subject"],
             record["body"], now, provider.name],
        )
        connection.execute(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?, "
            "provider_ref = ? WHERE idempotency_key = ?",
            [now, reference, record["idempotency_key"]],
        )


def dispatch(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime,
             providers: dict[str, Provider] | None = None) -> None:
    """Run every outbox rule, then send (caller holds the transaction)."""
    due = connection.execute(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE flow_id = ? AND status = 'pending' "
        "AND not_before <= ?)", [flow.id, now],
    ).fetchone()
    if not (due and due[0]):
        return  # every rule below only touches pending rows that are due
    suppress_without_consent(connection, flow, now)
    defer_quiet_hours(connection, flow, now)
    apply_frequency_cap(connection, flow, now)
    render_pending(connection, flow, now)
    send_with(connection, flow, now, providers or {})
    send_sandbox(connection, flow, now)
