"""Preview: the exact message one node would send one contact, before anything is sent.

It walks the same path as a real send: the node's fields (`render.message_spec`) rendered by
the one renderer with the run's params, the outbox's audience and connection resolution, and,
when the channel's connection is an SMTP one, the provider's own MIME composition, so the
headers shown (Message-ID, List-Unsubscribe, List-Unsubscribe-Post) are the ones a receiver
would get. Nothing is written: the store is read through a read-only connection.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mawb import nodes
from mawb.channels.base import OutboundMessage
from mawb.engine.render import message_spec, render_fields
from mawb.engine.steps import connection_for
from mawb.flowplan import node_params

if TYPE_CHECKING:
    from pathlib import Path

    from mawb.model import Flow


def outbox_channel(type_name: str) -> str | None:
    """The outbox channel of a node type's rows (None: it sends nothing, or is unknown).
    HTTP nodes have their own channels, see docs/architecture.md."""
    return nodes.get(type_name).outbox_channel if nodes.has(type_name) else None


class PreviewError(ValueError):
    """An unknown node or contact, or a node that sends nothing."""


@dataclass
class Preview:
    """One rendered message, as the outbox row and (for mail) the MIME message would hold it."""

    flow: str
    node: str
    contact_id: str
    channel: str
    audience: str
    connection: str | None
    idempotency_key: str
    recipient: str | None = None
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    mime: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def preview(flow: Flow, node_id: str, contact_id: str, params: dict[str, Any] | None = None,
            home: str | Path | None = None) -> Preview:
    """Render `node_id` of `flow` for `contact_id` of the workspace at `home` (default
    MAWB_HOME or ./.mawb). Raises PreviewError naming an unknown node or contact or a node
    that sends nothing, TemplateError for a template that does not render."""
    from mawb.engine.workspace import Workspace

    try:
        node = flow.node(node_id)
    except KeyError:
        known = ", ".join(n.id for n in flow.nodes if outbox_channel(n.type)) or "none"
        raise PreviewError(f"flow {flow.id} has no node {node_id!r} (message nodes: {known})"
                           ) from None
    channel = outbox_channel(node.type)
    if channel is None:
        raise PreviewError(f"node {node_id} ({node.type}) sends nothing to preview")
    parsed = node_params(flow, node_id)
    workspace = Workspace(home)
    contact = _contact(workspace, contact_id)
    connection = connection_for(flow, parsed, channel)
    audience = parsed.resolved_audience() if hasattr(parsed, "resolved_audience") else "contact"
    spec = message_spec(flow, node, parsed, connected=connection is not None)
    fields = render_fields(spec, None if channel == "social" else contact,
                           {**flow.params, **(params or {})})
    payload, headers = fields.get("payload"), fields.get("headers")
    result = Preview(flow=flow.id, node=node_id, contact_id=contact_id, channel=channel,
                     audience=audience, connection=connection,
                     idempotency_key=f"{flow.id}:{flow.version}:{contact_id}:{node_id}:1:0",
                     recipient=fields.get("recipient"), subject=fields.get("subject"),
                     body=fields.get("body"), html=fields.get("html"),
                     payload=json.loads(payload) if payload else {},
                     headers=json.loads(headers) if headers else {})
    if connection is None:
        result.notes.append(f"no connection for {channel}: the sandbox records it, nothing is "
                            "delivered")
    elif channel == "email":
        _compose_mail(workspace.home, result, flow.version)
    return result


def _contact(workspace: Any, contact_id: str) -> dict[str, Any]:
    with workspace.connection(workspace.partition_of(contact_id), read_only=True) as store:
        found = store.execute("SELECT * FROM contacts WHERE contact_id = ?", [contact_id])
        names = [column[0] for column in found.description or []]
        row = found.fetchone()
    if row is None:
        raise PreviewError(f"contact {contact_id!r} is not in the workspace {workspace.home} "
                       "(mawb import-contacts)")
    return dict(zip(names, row, strict=True))


def _compose_mail(home: Path, result: Preview, version: int) -> None:
    """The SMTP provider's own MIME message, headers included (no session is opened)."""
    from mawb.channels.connections import LinkContext, load_connections
    from mawb.channels.smtp import SmtpProvider

    connection = load_connections(home).get(result.connection or "")
    if connection is None:
        result.notes.append(f"connection {result.connection!r} is not configured in "
                            "connections.yaml: the dispatcher would retry, then dead-letter it")
        return
    if connection.kind != "smtp":
        result.notes.append(f"connection {result.connection!r} is {connection.kind}, not smtp")
        return
    try:
        provider = SmtpProvider(connection, LinkContext.for_workspace(home))
    except ValueError as error:  # a secret that does not resolve here
        result.notes.append(f"headers unavailable: {error}")
        return
    message = OutboundMessage(
        idempotency_key=result.idempotency_key, channel="email", recipient=result.recipient,
        subject=result.subject, body=result.body, html=result.html, headers=result.headers,
        payload=result.payload, contact_id=result.contact_id, flow_id=result.flow,
        node_id=result.node, flow_version=version, internal=result.audience == "internal")
    composed = provider.compose(message)
    result.headers = {name: str(value) for name, value in composed.items()}
    result.mime = composed.as_string()
