"""Ingest: due events change contacts' engagement attributes, once, at the tick they are due."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mawb.engine import outbox

if TYPE_CHECKING:
    from datetime import datetime

    import duckdb

# How each event name changes engagement attributes when its time comes.
EVENT_EFFECTS = """
UPDATE contacts SET
    email_opens = coalesce(email_opens, 0) + x.opens,
    email_clicks = coalesce(email_clicks, 0) + x.clicks,
    last_open_at = greatest(last_open_at, x.last_open),
    last_click_at = greatest(last_click_at, x.last_click),
    converted = coalesce(converted, false) OR x.conversions > 0,
    converted_at = coalesce(converted_at, x.first_conversion),
    unsubscribed = coalesce(unsubscribed, false) OR x.unsubscribes > 0
FROM (
    SELECT contact_id,
           count(*) FILTER (name = 'email_open') AS opens,
           count(*) FILTER (name = 'email_click') AS clicks,
           max(ts) FILTER (name = 'email_open') AS last_open,
           max(ts) FILTER (name = 'email_click') AS last_click,
           count(*) FILTER (name IN ('purchase', 'conversion')) AS conversions,
           min(ts) FILTER (name IN ('purchase', 'conversion')) AS first_conversion,
           count(*) FILTER (name IN ('unsubscribe', 'complaint')) AS unsubscribes
    FROM events WHERE applied_at IS NULL AND ts <= ? GROUP BY contact_id) x
WHERE contacts.contact_id = x.contact_id
"""


def ingest(connection: duckdb.DuckDBPyConnection, now: datetime) -> None:
    """Apply the events due at `now`. Both runners ask the tick plan first and skip this stage
    when no event is due (`TickPlan.events_due`), so it does not ask again."""
    connection.execute(EVENT_EFFECTS, [now])
    outbox.record_event_suppressions(connection, now)  # bounces, complaints
    connection.execute("UPDATE events SET applied_at = ? WHERE applied_at IS NULL AND ts <= ?",
                       [now, now])


__all__ = ["EVENT_EFFECTS", "ingest"]
