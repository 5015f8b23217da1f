"""Test sends ("proofs"): the message one step would send a sample contact, to a typed address.

The message is the preview's (`mawb.engine.preview`, the path a real send takes), sent through
the step's real provider (SMTP) to the address the analyst typed. A proof is not a send: it
never touches the outbox, the contact's history or any count; its subject says `[TEST]`, a
header marks it (`X-Mawb-Test: proof`), it carries no unsubscribe or tracking links (they
would act on the sample contact), and each attempt is appended to the workspace's
`test_sends.jsonl`, which the preview panel lists. Only SMTP connections are supported.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from mawb.model import Flow

LOG_FILE = "test_sends.jsonl"
TEST_HEADER = "X-Mawb-Test"
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ProofError(ValueError):
    """A test send that cannot be made, said plainly (no connection, not email, bad address)."""


@dataclass(frozen=True)
class Proof:
    """One test-send attempt, as the log keeps it."""

    at: str
    flow: str
    node: str
    contact_id: str
    to: str
    connection: str
    subject: str
    ok: bool
    detail: str


def proof_connection(flow: Flow, node_id: str, home: Path) -> str:
    """The SMTP connection a test of `node_id` goes through; ProofError saying why there is
    none (the step sends no email, names no connection, or connections.yaml lacks it)."""
    from mawb import nodes
    from mawb.channels.connections import ConnectionsError, load_connections
    from mawb.engine.preview import outbox_channel
    from mawb.engine.steps import connection_for

    node = flow.node(node_id)
    if outbox_channel(node.type) != "email":
        raise ProofError(f"test sends go by email; {node.label or node_id} is a {node.type}")
    name = connection_for(flow, nodes.get(node.type).parse(node.params), "email")
    if name is None:
        raise ProofError("no connection: this step would only be recorded by the sandbox. "
                         "Name an SMTP connection in the step (connection) or the flow's "
                         "settings to send a test.")
    try:
        connection = load_connections(home).get(name)
    except ConnectionsError as error:
        raise ProofError(f"connections.yaml is invalid: {error}") from None
    if connection is None:
        raise ProofError(f"connection {name!r} is not in the workspace's connections.yaml")
    if connection.kind != "smtp":
        raise ProofError(f"connection {name!r} is {connection.kind}; test sends use SMTP")
    return name


def send_proof(flow: Flow, node_id: str, contact_id: str, address: str, home: Path) -> Proof:
    """Render `node_id` for `contact_id` and send it to `address` as a test; the attempt is
    logged either way. Raises ProofError before anything is sent when it cannot be."""
    from mawb.channels.base import OutboundMessage
    from mawb.channels.connections import LinkContext, load_connections
    from mawb.channels.smtp import RESERVED_HEADERS, SmtpProvider
    from mawb.engine.preview import preview

    address = address.strip()
    if not _ADDRESS.match(address):
        raise ProofError(f"{address or 'an empty address'!r} is not an email address")
    name = proof_connection(flow, node_id, home)
    shown = preview(flow, node_id, contact_id, home=home)
    headers = {key: value for key, value in shown.headers.items()
               if key.lower() not in RESERVED_HEADERS | {"reply-to"}
               and not key.lower().startswith("x-mawb")}
    subject = f"[TEST] {shown.subject or ''}".strip()
    message = OutboundMessage(
        idempotency_key=f"test:{flow.id}:{node_id}:{contact_id}:{uuid.uuid4().hex}",
        channel="email", recipient=address, subject=subject, body=shown.body,
        html=shown.html, headers={**headers, TEST_HEADER: "proof"}, payload=shown.payload,
        contact_id=contact_id, flow_id=flow.id, node_id=node_id, flow_version=flow.version,
        internal=True)  # no unsubscribe or tracking links: they would act on the contact
    try:
        provider = SmtpProvider(load_connections(home)[name], LinkContext.for_workspace(home))
    except ValueError as error:  # a secret that does not resolve here
        raise ProofError(f"connection {name!r}: {error}") from None
    (result,) = provider.send_batch([message])
    proof = Proof(at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), flow=flow.id,
                  node=node_id, contact_id=contact_id, to=address, connection=name,
                  subject=subject, ok=result.ok,
                  detail=result.provider_ref or "" if result.ok else result.error or "failed")
    with (home / LOG_FILE).open("a", encoding="utf-8") as log:
        log.write(json.dumps(asdict(proof)) + "\n")
    return proof


def recent_proofs(home: Path, limit: int = 5) -> list[dict[str, Any]]:
    """The last test sends of the workspace, newest first."""
    path = home / LOG_FILE
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()[-limit:]
    return [json.loads(line) for line in reversed(lines) if line.strip()]
