"""The outbox: where every side effect waits until it is safe and allowed to happen.

Node steps only insert outbox rows (keyed by idempotency key). `dispatch` then, set-based and
inside the tick's `_dispatch` transaction: suppresses messages to contacts who unsubscribed,
are marked do-not-contact, gave no consent for the channel, or whose address (or contact) is on
the suppression list; defers messages that fall in the contact's quiet hours; holds or skips
messages over the flow's frequency cap; renders in Python what the step could not render in
SQL; and sandbox-sends the rows that have no connection (recording them in `messages` in the
same transaction that marks them sent, so a crash can never send twice). Rows with a connection
stay `pending` for the dispatcher (`mawb.engine.deliver`), which sends them with the store
closed. Every row that does not go out carries a `reason` code (REASONS).

Internal notifications (audience `internal`: a fixed address about the contact, e.g. the sales
team) are not marketing to the contact: its consent, caps and quiet hours do not gate them;
only the suppression list of their own address does.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from mawb.engine.cohort import literal
from mawb.engine.render import message_spec, render_fields
from mawb.engine.store import contact_column_names
from mawb.flowplan import node_params
from mawb.model import CONSENT_COLUMNS
from mawb.personalize import TemplateError

if TYPE_CHECKING:
    import duckdb

    from mawb.model import Flow

MAX_ATTEMPTS = 5
REASONS = {
    "do_not_contact": "contact is marked do not contact",
    "unsubscribed": "contact unsubscribed",
    "suppressed_address": "address is on the suppression list",
    "suppressed_contact": "contact is on the suppression list for this channel",
    "no_consent": "no consent for this channel",
    "no_address": "contact has no address for this channel",
    "frequency_cap": "over the flow's frequency cap",
    "quiet_hours": "deferred to the end of the contact's quiet hours",
    "render_failed": "a template failed to render",
    "retry": "waiting to retry after a failed attempt",
    "rejected": "the provider refused it permanently",
    "max_attempts": "every attempt failed",
    "unknown_connection": "the connection is not configured",
}
# Finished rows leave the hot `outbox` for `outbox_done` in the transaction that finished them
# (`archive_finished`), so the rules and the dispatcher scan only open rows however long the
# store has run; `outbox_all` (a view over both) is what readers of the history query.
FINISHED = ("sent", "suppressed", "skipped", "dead")
DONE_TABLE = "outbox_done"
_FINISHED_SQL = ", ".join(literal(status) for status in FINISHED)
ALL_ROWS = "outbox_all"
ALL_ROWS_QUERY = "SELECT * FROM outbox UNION ALL BY NAME SELECT * FROM outbox_done"
# A version's dispatch handles its own rows (its settings, its templates): section 6.
_DUE = ("outbox.flow_id = ? AND outbox.version = ? AND outbox.status = 'pending' "
        "AND outbox.not_before <= ?")


def _reason_text(column: str = "reason") -> str:
    """SQL mapping a reason code to its sentence (the `error` shown next to it)."""
    whens = " ".join(f"WHEN {literal(code)} THEN {literal(text)}"
                     for code, text in REASONS.items())
    return f"CASE {column} {whens} END"


def suppress(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime) -> None:
    """Mark the flow version's due pending rows suppressed, the first matching reason winning."""
    suppress_due(connection, [flow.id], now, status="pending", version=flow.version)


def suppress_due(connection: duckdb.DuckDBPyConnection, flow_ids: list[str] | None,
                 now: datetime, status: str = "pending", within: str | None = None,
                 version: int | None = None) -> None:
    """Suppress due rows in `status` of `flow_ids` (None: every flow), in one statement; the
    dispatcher runs it over `queued` rows too, so an unsubscribe between queueing and sending
    still stops the message. `within` names a table of the idempotency keys to look at."""
    columns = contact_column_names(connection)
    consent = " ".join(f"WHEN {literal(channel)} THEN c.\"{column}\""
                       for channel, column in CONSENT_COLUMNS.items() if column in columns)
    no_consent = f"NOT coalesce(CASE o.channel {consent} END, true)" if consent else "false"
    listed = connection.execute("SELECT EXISTS (SELECT 1 FROM suppressions)").fetchone()
    if listed and listed[0]:
        address = ("EXISTS (SELECT 1 FROM suppressions s WHERE lower(s.address) = "
                   "lower(o.recipient) AND coalesce(s.channel, o.channel) = o.channel)")
        contact = ("EXISTS (SELECT 1 FROM suppressions s WHERE s.contact_id = o.contact_id "
                   "AND s.address IS NULL AND coalesce(s.channel, o.channel) = o.channel)")
    else:
        address = contact = "false"
    marketing = "o.audience = 'contact'"
    flows = ("true" if flow_ids is None else
             f"o.flow_id IN ({', '.join(literal(f) for f in flow_ids) or 'NULL'})")
    if within is not None:
        flows += f" AND o.idempotency_key IN (SELECT idempotency_key FROM {within})"
    if version is not None:
        flows += f" AND o.version = {int(version)}"
    connection.execute(
        f"""
        UPDATE outbox SET status = 'suppressed', reason = s.code, error = s.text
        FROM (SELECT idempotency_key, code, {_reason_text('code')} AS text FROM (
                SELECT o.idempotency_key, CASE
                    WHEN {marketing} AND coalesce(c.do_not_contact, false) THEN 'do_not_contact'
                    WHEN {marketing} AND coalesce(c.unsubscribed, false) THEN 'unsubscribed'
                    WHEN {address} THEN 'suppressed_address'
                    WHEN {marketing} AND {contact} THEN 'suppressed_contact'
                    WHEN {marketing} AND {no_consent} THEN 'no_consent'
                    WHEN o.connection IS NOT NULL AND o.recipient IS NULL THEN 'no_address'
                  END AS code
                FROM outbox o JOIN contacts c USING (contact_id)
                WHERE {flows} AND o.status = ? AND o.not_before <= ?
                  AND o.channel IN ('email', 'sms', 'web_push')) WHERE code IS NOT NULL) s
        WHERE outbox.idempotency_key = s.idempotency_key
        """,
        [status, now],
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
        UPDATE outbox SET not_before = timezone('UTC', timezone({zone}, {end_local})),
               reason = 'quiet_hours'
        FROM contacts c
        WHERE outbox.contact_id = c.contact_id AND {_DUE} AND outbox.audience = 'contact'
          AND outbox.channel IN ('email', 'sms', 'web_push') AND {inside}
        """,
        [flow.id, flow.version, now],
    )


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def apply_frequency_cap(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime) -> None:
    """Hold (defer) or skip contact messages beyond max_messages in any per_days window.

    Internal notifications neither count towards a contact's cap nor are held by it."""
    cap = flow.settings.frequency_cap
    if cap is None:
        return
    window = timedelta(days=cap.per_days)
    due = ("SELECT idempotency_key, contact_id, row_number() OVER (PARTITION BY contact_id "
           "ORDER BY created_at, idempotency_key) AS rank FROM outbox WHERE flow_id = ? "
           f"AND version = {int(flow.version)} "
           "AND status = 'pending' AND not_before <= ? AND audience = 'contact' "
           "AND channel IN ('email', 'sms', 'web_push')")
    sent = ("SELECT contact_id, sent_at FROM messages WHERE sent_at > ? "
            "AND channel IN ('email', 'sms', 'web_push') AND NOT EXISTS (SELECT 1 FROM "
            f"{ALL_ROWS} o WHERE o.idempotency_key = messages.idempotency_key "
            "AND o.audience = 'internal')")
    connection.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE over_cap AS
        SELECT o.idempotency_key, s.oldest
        FROM ({due}) o
        JOIN (SELECT contact_id, count(*) AS sent, min(sent_at) AS oldest FROM ({sent})
              GROUP BY contact_id) s USING (contact_id)
        WHERE s.sent + o.rank > ?
        UNION ALL
        SELECT idempotency_key, NULL FROM ({due}) o
        WHERE rank > ? AND contact_id NOT IN (SELECT contact_id FROM ({sent}))
        """,
        [flow.id, now, now - window, cap.max_messages, flow.id, now, cap.max_messages,
         now - window],
    )
    if cap.mode.value == "skip":
        connection.execute(
            f"UPDATE outbox SET status = 'skipped', reason = 'frequency_cap', "
            f"error = {literal(REASONS['frequency_cap'])} "
            "WHERE idempotency_key IN (SELECT idempotency_key FROM over_cap)"
        )
    else:
        connection.execute(
            "UPDATE outbox SET not_before = coalesce(o.oldest, CAST(? AS TIMESTAMP)) + ?, "
            "reason = 'frequency_cap' "
            "FROM over_cap o WHERE outbox.idempotency_key = o.idempotency_key",
            [now, window],
        )


def render_pending(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime,
                   params: dict[str, Any] | None = None) -> int:
    """Render, in python-liquid, the due rows of this flow version the SQL renderer left
    (`unrendered`), with the run's params; a template error makes the row dead with the reason.
    Returns how many rows were rendered."""
    found = connection.execute(
        "SELECT o.idempotency_key, o.node_id, o.connection, c.* FROM outbox o "
        "LEFT JOIN contacts c USING (contact_id) "
        "WHERE o.flow_id = ? AND o.version = ? AND o.status = 'pending' AND o.not_before <= ? "
        "AND o.unrendered",
        [flow.id, flow.version, now],
    )
    names = [column[0] for column in found.description or []][3:]
    rows = found.fetchall()
    if not rows:
        return 0
    run_params = {**flow.params, **(params or {})}
    specs: dict[tuple[str, bool], Any] = {}
    updates = []
    for key, node_id, connection_name, *values in rows:
        contact = dict(zip(names, values, strict=True))
        spec_key = (node_id, connection_name is not None)
        if spec_key not in specs:
            node = flow.node(node_id)
            parsed = node_params(flow, node_id)
            specs[spec_key] = message_spec(flow, node, parsed, connected=spec_key[1])
        try:
            fields = render_fields(specs[spec_key], contact, run_params)
        except TemplateError as error:
            updates.append({"idempotency_key": key, "error": f"render failed: {error}"})
            continue
        updates.append({"idempotency_key": key, "error": None, **fields})
    frame = pd.DataFrame(updates, columns=["idempotency_key", "error", "recipient", "subject",
                                           "body", "html", "payload", "headers"])
    frame = frame.astype(object).where(frame.notna(), None)
    connection.register("rendered_rows", frame)
    connection.execute(
        f"""
        UPDATE outbox SET
            recipient = CASE WHEN r.error IS NULL THEN r.recipient ELSE outbox.recipient END,
            subject = r.subject, body = r.body, html = r.html,
            payload = CAST(r.payload AS JSON), headers = CAST(r.headers AS JSON),
            unrendered = false, error = r.error,
            status = CASE WHEN r.error IS NULL THEN outbox.status ELSE 'dead' END,
            reason = CASE WHEN r.error IS NULL THEN outbox.reason ELSE 'render_failed' END
        FROM rendered_rows r WHERE outbox.idempotency_key = r.idempotency_key
          AND outbox.flow_id = {literal(flow.id)}
        """
    )
    connection.unregister("rendered_rows")
    return len(updates)


def send_sandbox(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime) -> None:
    """Record every due row without a connection as sent (set-based), and move it with every
    other finished row to `outbox_done` (see `archive_finished`).

    Message channels land in `messages`; webhook, api and crm rows are requests and are only
    marked sent (provider `sandbox`), never counted as messages. The sent rows are written to
    `outbox_done` already marked sent: the hot table is never updated for rows leaving it."""
    due = f"{_DUE} AND outbox.connection IS NULL"
    parameters = [flow.id, flow.version, now]
    oldest = connection.execute(f"SELECT min(created_at) FROM outbox WHERE {due}",
                                parameters).fetchone()
    if not (oldest and oldest[0] is not None):
        archive_finished(connection)
        return
    # A key's message is recorded at or after its row was created, so only messages since the
    # oldest row sent here can match: older row groups are skipped by their statistics.
    connection.execute(
        f"""
        INSERT INTO messages (idempotency_key, flow_id, contact_id, node_id, channel, recipient,
                              subject, body, sent_at, provider)
        SELECT idempotency_key, flow_id, contact_id, node_id, channel, recipient, subject, body,
               ?, 'sandbox'
        FROM outbox WHERE {due} AND channel IN ('email', 'sms', 'web_push', 'social')
          AND NOT EXISTS (SELECT 1 FROM messages m
                          WHERE m.idempotency_key = outbox.idempotency_key
                            AND m.sent_at >= CAST(? AS TIMESTAMP))
        """,
        [now, *parameters, oldest[0]],
    )
    connection.execute(
        f"""
        INSERT INTO {DONE_TABLE} BY NAME
        SELECT * EXCLUDE (sandbox) REPLACE (
               CASE WHEN sandbox THEN 'sent' ELSE status END AS status,
               CASE WHEN sandbox THEN attempts + 1 ELSE attempts END AS attempts,
               CASE WHEN sandbox THEN CAST(? AS TIMESTAMP) ELSE sent_at END AS sent_at,
               CASE WHEN sandbox THEN NULL ELSE reason END AS reason,
               CASE WHEN sandbox THEN 'sandbox:' || idempotency_key ELSE provider_ref END
                   AS provider_ref)
        FROM (SELECT *, {due} AS sandbox FROM outbox)
        WHERE sandbox OR status IN ({_FINISHED_SQL})
        """,
        [now, *parameters],
    )
    connection.execute(f"DELETE FROM outbox WHERE status IN ({_FINISHED_SQL}) OR ({due})",
                       parameters)


def queue_connected(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime) -> None:
    """Due rows with a connection that passed every rule wait, `queued`, for the dispatcher."""
    connection.execute(
        f"UPDATE outbox SET status = 'queued', reason = NULL WHERE {_DUE} "
        "AND outbox.connection IS NOT NULL",
        [flow.id, flow.version, now],
    )


def dispatch(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime,
             params: dict[str, Any] | None = None) -> None:
    """Run every outbox rule, then sandbox-send and archive (caller holds the transaction).

    Rows with a connection become `queued`, rendered and allowed, for the dispatcher."""
    due = connection.execute(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE flow_id = ? AND version = ? "
        "AND status = 'pending' AND not_before <= ?)", [flow.id, flow.version, now],
    ).fetchone()
    if not (due and due[0]):
        return  # every rule below only touches pending rows that are due
    suppress(connection, flow, now)
    defer_quiet_hours(connection, flow, now)
    apply_frequency_cap(connection, flow, now)
    render_pending(connection, flow, now, params)
    queue_connected(connection, flow, now)
    send_sandbox(connection, flow, now)


def archive_finished(connection: duckdb.DuckDBPyConnection) -> int:
    """Move every finished row of the hot table to `outbox_done` (caller holds the
    transaction that finished them, so no reader sees a row in both or in neither); returns
    how many moved. Only the hot table is scanned: its open rows plus the ones just finished."""
    row = connection.execute(
        f"INSERT INTO {DONE_TABLE} BY NAME SELECT * FROM outbox WHERE status IN ({_FINISHED_SQL})"
    ).fetchone()
    moved = int(row[0]) if row else 0
    if moved:
        connection.execute(f"DELETE FROM outbox WHERE status IN ({_FINISHED_SQL})")
    return moved


def record_event_suppressions(connection: duckdb.DuckDBPyConnection, now: datetime) -> None:
    """Hard bounces and complaints among the events due now put the address on the
    suppression list (the intake service and provider webhooks send them as events named
    `bounce` and `complaint`; a bounce with properties.type = 'soft' does not count).
    Runs in the ingest transaction, before the events are marked applied."""
    connection.execute(
        """
        INSERT INTO suppressions (address, contact_id, channel, reason, source, "at")
        SELECT coalesce(e.properties->>'address', c.email), e.contact_id,
               coalesce(e.properties->>'channel', 'email'), e.name,
               coalesce(e.source, 'event'), e.ts
        FROM events e LEFT JOIN contacts c USING (contact_id)
        WHERE e.applied_at IS NULL AND e.ts <= ? AND e.name IN ('bounce', 'complaint')
          AND coalesce(e.properties->>'type', 'hard') <> 'soft'
        """,
        [now],
    )
