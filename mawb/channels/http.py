"""HTTP providers, each in the request shape of a widely used service, over guarded httpx.

- SMS: the Twilio Messages API (`POST /2010-04-01/Accounts/{sid}/Messages.json`, form fields
  `To`, `From` or `MessagingServiceSid`, `Body`; HTTP basic auth with the account SID and token).
- social: the Mastodon statuses API (`POST /api/v1/statuses`, JSON `status`, `visibility`;
  Bearer token). Mastodon honours `Idempotency-Key` itself, so a re-send posts once.
- CRM: HubSpot CRM v3 objects (`POST /crm/v3/objects/{type}` `{"properties": ...}` to create,
  `PATCH /crm/v3/objects/{type}/{id}` to update; a contact may be addressed by email with
  `?idProperty=email`; Bearer private-app token).
- api: a generic adapter (method, URL, headers, body from the message) whose JSON response fields
  are mapped into `SendResult.response` for `api_call` / `external_api`.
- webhook: a JSON POST signed per Standard Webhooks (`mawb.channels.webhooks`).

Every request goes through `mawb.channels.netguard` (public addresses only, redirects checked,
body cut at `max_response_bytes`, connect/read timeouts and a total time of twice
`timeout_seconds`) and carries `Idempotency-Key: <outbox key>`. One httpx.Client (one connection
pool) per batch, shared by the batch's `concurrency` threads. Outcomes: 2xx sent; 429 retryable
with `Retry-After`; 408, 5xx, timeouts and connection errors retryable; other 4xx, refused
addresses and oversize responses permanent (a retry would get the same answer).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode

import httpx

from mawb.channels.base import CheckFailed, SendResult
from mawb.channels.connections import SENSITIVE_HEADERS, SecretError, resolve_secret
from mawb.channels.netguard import (
    OutboundBlocked,
    Reply,
    ResponseTooLarge,
    fetch,
    guarded_client,
)
from mawb.channels.pool import RateLimiter, run_bounded
from mawb.channels.webhooks import sign_headers

if TYPE_CHECKING:
    from mawb.channels.base import OutboundMessage
    from mawb.channels.connections import LinkContext

MAX_RETRY_AFTER = 86_400.0
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
HUBSPOT_OBJECTS = {"contact": "contacts", "lead": "leads", "deal": "deals", "task": "tasks"}


@dataclass(frozen=True)
class Call:
    """One HTTP request a message becomes."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None


class HttpProvider:
    """Shared send loop: build a `Call` per message, fetch it guarded, classify the reply."""

    name: ClassVar[str] = "http"

    def __init__(self, connection: Any, links: LinkContext) -> None:
        self.connection = connection
        self.links = links
        self.limiter = RateLimiter(connection.rate_per_second)

    # -- subclasses fill these in
    def build(self, message: OutboundMessage) -> Call:
        raise NotImplementedError

    def check_call(self) -> Call:
        raise CheckFailed(f"{self.name}: no URL to check (the URL comes from each message)")

    def accepted(self, message: OutboundMessage, reply: Reply) -> SendResult:
        """The result of a 2xx reply (subclasses read the provider's id from it)."""
        return SendResult(message.idempotency_key, ok=True)

    # -- the loop
    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        if not messages:
            return []
        with self.client() as client:
            return run_bounded(messages, lambda message: [self.send_one(client, message)],
                               self.connection.concurrency)

    def client(self) -> httpx.Client:
        return guarded_client(self.connection.allow_hosts, timeout=self.connection.timeout_seconds,
                              max_connections=self.connection.concurrency)

    def send_one(self, client: httpx.Client, message: OutboundMessage) -> SendResult:
        key = message.idempotency_key
        try:
            call = self.build(message)
        except (ValueError, SecretError) as error:  # includes JSON errors in the payload
            return SendResult(key, ok=False, error=f"{self.name}: bad message: {error}")
        self.limiter.wait()
        try:
            reply = self.fetch(client, call, key)
        except (OutboundBlocked, ResponseTooLarge) as error:
            return SendResult(key, ok=False, error=f"{self.name}: {error}")
        except httpx.TimeoutException as error:
            return SendResult(key, ok=False, retryable=True, error=(
                f"{self.name}: timeout ({type(error).__name__}, limit "
                f"{self.connection.timeout_seconds:g} s)"))
        except httpx.TransportError as error:
            reason = str(error) or type(error).__name__
            return SendResult(key, ok=False, retryable=True,
                              error=f"{self.name}: connection error: {reason}")
        return self.failure(key, reply) or self.accepted(message, reply)

    def failure(self, key: str, reply: Reply) -> SendResult | None:
        """None when `reply` means sent, else the failure (see `classify`)."""
        return classify(key, reply, self.name)

    def fetch(self, client: httpx.Client, call: Call, key: str | None = None) -> Reply:
        headers = {**call.headers, **({"Idempotency-Key": key} if key else {})}
        return fetch(client, call.method, call.url, headers=headers, content=call.content,
                     max_bytes=self.connection.max_response_bytes,
                     time_limit=2 * self.connection.timeout_seconds)

    def check(self) -> str:
        """GET/HEAD of the service with the connection's credentials; nothing is sent."""
        call = self.check_call()
        try:
            with self.client() as client:
                reply = self.fetch(client, call)
                if reply.status == 405 and call.method == "HEAD":
                    reply = self.fetch(client, Call("GET", call.url, call.headers))
        except (OutboundBlocked, ResponseTooLarge, httpx.TransportError) as error:
            reason = str(error) or type(error).__name__
            raise CheckFailed(f"{call.method} {call.url}: {reason}") from None
        if reply.status >= 400:
            raise CheckFailed(f"{call.method} {call.url}: HTTP {reply.status}"
                              f"{' (credentials refused)' if reply.status in {401, 403} else ''}")
        return f"{self.name}: {call.method} {call.url} -> HTTP {reply.status}; nothing was sent"


def classify(key: str, reply: Reply, name: str) -> SendResult | None:
    """None for a 2xx reply, else the failure: retryable (429, 408, 5xx) or permanent."""
    if 200 <= reply.status < 300:
        return None
    excerpt = " ".join(reply.body[:200].decode("utf-8", "replace").split())
    error = f"{name}: HTTP {reply.status}" + (f": {excerpt}" if excerpt else "")
    if reply.status == 429 or reply.status == 408 or reply.status >= 500:
        return SendResult(key, ok=False, error=error, retryable=True,
                          retry_after=retry_after(reply.headers.get("retry-after")))
    return SendResult(key, ok=False, error=error)


def retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), capped at a day."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import UTC, datetime

    seconds = (moment - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _json_body(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _json(reply: Reply) -> Any:
    try:
        return reply.json()
    except ValueError:
        return None


class TwilioProvider(HttpProvider):
    name = "twilio"

    def __init__(self, connection: Any, links: LinkContext) -> None:
        super().__init__(connection, links)
        credentials = f"{connection.account_sid}:{connection.secret('auth_token')}"
        self._auth = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
        self._account = f"{connection.base_url}/2010-04-01/Accounts/{quote(connection.account_sid)}"

    def build(self, message: OutboundMessage) -> Call:
        if not message.recipient or not E164.match(message.recipient):
            raise ValueError(f"recipient {message.recipient!r} is not an E.164 phone number")
        if not message.body:
            raise ValueError("an SMS needs a body")
        form = {"To": message.recipient, "Body": message.body}
        if self.connection.messaging_service_sid:
            form["MessagingServiceSid"] = self.connection.messaging_service_sid
        else:
            form["From"] = self.connection.from_number
        return Call("POST", f"{self._account}/Messages.json",
                    {**self._auth, "Content-Type": "application/x-www-form-urlencoded"},
                    urlencode(form).encode())

    def accepted(self, message: OutboundMessage, reply: Reply) -> SendResult:
        data = _json(reply)
        sid = data.get("sid") if isinstance(data, dict) else None
        return SendResult(message.idempotency_key, ok=True, provider_ref=sid)

    def check_call(self) -> Call:
        return Call("GET", f"{self._account}.json", self._auth)


class MastodonProvider(HttpProvider):
    name = "mastodon"

    def __init__(self, connection: Any, links: LinkContext) -> None:
        super().__init__(connection, links)
        self._auth = _bearer(connection.secret("access_token") or "")

    def build(self, message: OutboundMessage) -> Call:
        text = message.body or ""
        link = message.payload.get("link")
        if link:
            text = f"{text}\n\n{link}" if text else str(link)
        if not text.strip():
            raise ValueError("a status needs text")
        body = {"status": text,
                "visibility": message.payload.get("visibility", self.connection.visibility)}
        return Call("POST", f"{self.connection.base_url}/api/v1/statuses",
                    {**self._auth, "Content-Type": "application/json"}, _json_body(body))

    def accepted(self, message: OutboundMessage, reply: Reply) -> SendResult:
        data = _json(reply)
        ref = (data.get("url") or data.get("id")) if isinstance(data, dict) else None
        return SendResult(message.idempotency_key, ok=True, provider_ref=ref)

    def check_call(self) -> Call:
        return Call("GET", f"{self.connection.base_url}/api/v1/accounts/verify_credentials",
                    self._auth)


class HubspotProvider(HttpProvider):
    name = "hubspot"

    def __init__(self, connection: Any, links: LinkContext) -> None:
        super().__init__(connection, links)
        self._auth = _bearer(connection.secret("access_token") or "")

    def build(self, message: OutboundMessage) -> Call:
        payload = message.payload
        kind = payload.get("object", "contact")
        if kind not in HUBSPOT_OBJECTS:
            raise ValueError(f"object {kind!r}: expected one of {', '.join(HUBSPOT_OBJECTS)}")
        properties = payload.get("properties")
        if not isinstance(properties, dict) or not properties:
            raise ValueError("properties must be a non-empty object")
        base = f"{self.connection.base_url}/crm/v3/objects/{HUBSPOT_OBJECTS[kind]}"
        headers = {**self._auth, "Content-Type": "application/json"}
        body = _json_body({"properties": properties})
        operation = payload.get("operation", "create")
        if operation == "create":
            return Call("POST", base, headers, body)
        if operation != "update":
            raise ValueError(f"operation {operation!r}: expected create or update")
        if payload.get("id"):
            return Call("PATCH", f"{base}/{quote(str(payload['id']), safe='')}", headers, body)
        if kind == "contact" and message.recipient:
            return Call("PATCH", f"{base}/{quote(message.recipient, safe='')}?idProperty=email",
                        headers, body)
        raise ValueError(f"an update of a {kind} needs its id")

    def accepted(self, message: OutboundMessage, reply: Reply) -> SendResult:
        data = _json(reply)
        record = str(data["id"]) if isinstance(data, dict) and "id" in data else None
        return SendResult(message.idempotency_key, ok=True, provider_ref=record,
                          response={"crm_id": record} if record else None)

    def check_call(self) -> Call:
        return Call("GET", f"{self.connection.base_url}/crm/v3/objects/contacts?limit=1",
                    self._auth)


class GenericHttpProvider(HttpProvider):
    """Method, URL, headers and body from the message; `store` paths read from the reply."""

    name = "http"

    def __init__(self, connection: Any, links: LinkContext) -> None:
        super().__init__(connection, links)
        headers = dict(connection.headers)
        for header in headers:
            if header.lower() in SENSITIVE_HEADERS:
                headers[header] = connection.secret(f"headers.{header}") or ""
        if connection.token:
            headers.update(_bearer(connection.secret("token") or ""))
        elif connection.username:
            pair = f"{connection.username}:{connection.secret('password') or ''}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        self._headers = headers

    def url(self, target: str | None) -> str:
        if target and target.startswith(("http://", "https://")):
            return target
        if not self.connection.base_url:
            raise ValueError(f"url {target!r} is not absolute and the connection has no base_url")
        return f"{self.connection.base_url}/{(target or '').lstrip('/')}".rstrip("/")

    def build(self, message: OutboundMessage) -> Call:
        payload = message.payload
        method = str(payload.get("method") or self.connection.method).upper()
        headers = {**self._headers, **{str(k): str(v) for k, v in
                                       (payload.get("headers") or {}).items()}}
        if payload.get("secret"):
            headers.update(_bearer(resolve_secret(payload["secret"],
                                                  self.connection._home)))
        body = payload.get("body")
        content: bytes | None = None
        if body is not None and method not in {"GET", "HEAD"}:
            content = body.encode() if isinstance(body, str) else _json_body(body)
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        return Call(method, self.url(payload.get("url")), headers, content)

    def accepted(self, message: OutboundMessage, reply: Reply) -> SendResult:
        store = message.payload.get("store") or {}
        if not store:
            return SendResult(message.idempotency_key, ok=True)
        data = _json(reply)
        if data is None:
            return SendResult(message.idempotency_key, ok=False, error=(
                f"http: HTTP {reply.status} but the response is not JSON; cannot store "
                f"{', '.join(store)}"))
        values = {attribute: dig(data, path) for attribute, path in store.items()}
        return SendResult(message.idempotency_key, ok=True, response=values)

    def check_call(self) -> Call:
        if not self.connection.base_url:
            raise CheckFailed("http: no base_url to check (URLs come from each message)")
        return Call("HEAD", self.url(self.connection.check_path), self._headers)


def dig(data: Any, path: str) -> Any:
    """`data.plan` / `items.0.id` out of parsed JSON; None where the path does not exist."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.lstrip("-").isdigit() and -len(data) <= int(
                part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


class WebhookProvider(HttpProvider):
    """A JSON POST signed per Standard Webhooks; `webhook-id` is the outbox key."""

    name = "webhook"

    def __init__(self, connection: Any, links: LinkContext) -> None:
        super().__init__(connection, links)
        self._secret = connection.secret("signing_secret")

    def build(self, message: OutboundMessage) -> Call:
        url = message.payload.get("url") or self.connection.url
        if not url:
            raise ValueError("no url in the message or the connection")
        secret = self._secret
        if secret is None and message.payload.get("secret"):
            secret = resolve_secret(message.payload["secret"], self.connection._home)
        if secret is None:
            raise ValueError("no signing secret in the connection or the message")
        body = _json_body(message.payload.get("body", {}))
        headers = {"Content-Type": "application/json",
                   **sign_headers(secret, message.idempotency_key, body)}
        return Call("POST", url, headers, body)

    def check_call(self) -> Call:
        if not self.connection.url:
            raise CheckFailed("webhook: no url to check (the URL comes from each node)")
        return Call("HEAD", self.connection.url)
