"""The sandbox: the provider of every channel that has no connection (the default).

It sends nothing and records nothing itself: the tick's `_dispatch` records sandbox sends in the
store's `messages` table in the same transaction that marks them sent, so a workspace emails no
one until a connection is configured and a flow names it. This class exists so code holding a
provider for "no connection" (previews, `provider_for(None, ...)`) behaves the same way.
"""

from __future__ import annotations

from mawb.channels.base import OutboundMessage, SendResult


class SandboxProvider:
    name = "sandbox"

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        return [SendResult(m.idempotency_key, ok=True, provider_ref="sandbox") for m in messages]

    def check(self) -> str:
        return "sandbox: messages are recorded in the workspace, never delivered"
