"""The one small interface every provider implements, and the values that cross it.

The dispatcher (`mawb.engine.deliver`) claims a batch of outbox rows in a short transaction,
closes the store, and hands the batch to the provider of the row's connection. A provider never
sees the store: it gets `OutboundMessage`s and returns one `SendResult` per message, so network
I/O never happens while the DuckDB write lock is held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboundMessage:
    """One rendered outbox row, ready to deliver.

    `idempotency_key` is stable across retries and re-claims: SMTP derives `Message-ID` from it,
    HTTP providers send it as the `Idempotency-Key` header.

    What each provider reads (everything already rendered; nothing here is a template):

    - email (smtp): `recipient` address, `subject`, `html` and/or `body` (text), `headers`
      (extra mail headers), `payload["preheader"]`; the contact/flow/version/node ids sign the
      unsubscribe, open and click links. `internal=True` (a fixed internal recipient, not the
      contact) sends no unsubscribe header and no tracking.
    - web_push: `recipient` = JSON subscription `{"endpoint", "keys": {"p256dh", "auth"}}`,
      `subject` = title, `body`, `payload["url"]`, optional `payload["ttl"]`,
      `payload["urgency"]`.
    - sms (twilio): `recipient` phone number (E.164), `body`.
    - social (mastodon): `body` = status text, optional `payload["link"]` (appended),
      `payload["visibility"]`.
    - crm (hubspot): `payload = {"operation": "create"|"update", "object": "contact"|"lead"|
      "deal"|"task", "properties": {...}, "id": optional record id}`; an update without `id`
      addresses the contact by `recipient` (its email, `idProperty=email`).
    - api (http): `payload = {"method", "url", "headers", "body" (str or JSON value),
      "store": {attribute: "dotted.path"}, "secret": optional reference sent as Bearer}`;
      `SendResult.response` = {attribute: value} (None where a path is absent).
    - webhook: `payload = {"url" (optional when the connection has one), "body": JSON value,
      "secret": reference to the whsec_ key, used when the connection sets none}`.
    """

    idempotency_key: str
    channel: str  # email | sms | web_push | social | webhook | api | crm
    recipient: str | None
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    contact_id: str | None = None
    flow_id: str | None = None
    node_id: str | None = None
    flow_version: int | None = None
    internal: bool = False


@dataclass(frozen=True)
class SendResult:
    """What happened to one message.

    `retryable` failures go back to `pending` with backoff (honouring `retry_after` seconds when
    the provider said so, e.g. HTTP 429 Retry-After); the others are `dead` at once.
    `response` carries mapped fields for api_call/external_api (stored into contact attributes).
    """

    idempotency_key: str
    ok: bool
    provider_ref: str | None = None
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None
    response: dict[str, Any] | None = None


class Provider(Protocol):
    """Delivers a batch over one connection; never raises for a single message's failure."""

    name: str

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]: ...

    def check(self) -> str:
        """A real handshake without sending (SMTP EHLO/AUTH, HTTP HEAD/GET); returns a summary,
        raises CheckFailed naming the step that failed."""
        ...


class CheckFailed(Exception):
    """`Provider.check` could not complete its handshake; the message says which step failed."""
