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
        """A real handshake without sending (SMTP EHLO/AUTH, HTTP HEAD/GET); returns a summary."""
        ...
