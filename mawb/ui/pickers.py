"""What the workspace knows, offered where a step names it: event names and contact attributes.

The Builder's form suggests the events the workspace has seen (its events table) and the
flow's own triggers listen for, and the contact attributes (the contacts table's columns), so
an analyst picks `customer_signup` instead of typing it. Read through the read-only
`WorkspaceReader`, cached until a store file changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from mawb.nodes.base import Category
from mawb.ui.builder_reads import Stamp, store_stamp

if TYPE_CHECKING:
    from pathlib import Path

    from mawb.model import Flow

EVENT_FIELDS = ("event", "events")
"""Trigger fields that name events."""
ATTRIBUTE_FIELDS = ("date_field", "until_field")
"""Fields that name one contact attribute."""
ATTRIBUTE_KEY_FIELDS = ("set", "increment", "store")
"""Fields keyed by the contact attributes they write."""
MAX_EVENTS = 200


@dataclass(frozen=True)
class Vocabulary:
    """Names the form offers: events and contact attributes, sorted."""

    events: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    samples: tuple[str, ...] = ()  # a few contact ids, for previews


def workspace_vocabulary(home: Path | None, flow: Flow | None = None) -> Vocabulary:
    """The workspace's event names and contact columns, plus the events the flow's triggers
    name (known before any event arrived). Empty without a store or while it stays busy."""
    from mawb import nodes

    stamp = store_stamp(home) if home is not None else None
    stored = Vocabulary() if stamp is None else _stored_vocabulary(str(home), stamp)
    named: set[str] = set()
    for node in flow.nodes if flow is not None else []:
        if nodes.has(node.type) and nodes.get(node.type).category is Category.TRIGGER:
            value = node.params.get("event")
            named.update([value] if isinstance(value, str) and value else [])
            named.update(v for v in node.params.get("events") or [] if isinstance(v, str))
    return Vocabulary(tuple(sorted(set(stored.events) | named)), stored.attributes,
                      stored.samples)


def sample_contacts(home: Path) -> tuple[str, ...]:
    """A few contact ids of the workspace to preview with (none without a store)."""
    stamp = store_stamp(home)
    return () if stamp is None else _stored_vocabulary(str(home), stamp).samples


@st.cache_data(max_entries=8, show_spinner=False)
def _stored_vocabulary(home: str, stamp: Stamp) -> Vocabulary:
    from pathlib import Path

    from mawb.engine.store import StoreBusyError, contact_column_names
    from mawb.ui.reader import WorkspaceReader

    try:
        with WorkspaceReader(Path(home), retry_seconds=2).read() as connection:
            events = [row[0] for row in connection.execute(
                "SELECT DISTINCT name FROM events WHERE name IS NOT NULL ORDER BY 1 LIMIT ?",
                [MAX_EVENTS]).fetchall()]
            attributes = sorted(contact_column_names(connection))
            samples = [row[0] for row in connection.execute(
                "SELECT contact_id FROM contacts ORDER BY contact_id LIMIT 3").fetchall()]
    except (StoreBusyError, FileNotFoundError):
        return Vocabulary()
    return Vocabulary(tuple(events), tuple(attributes), tuple(map(str, samples)))
