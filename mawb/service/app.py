"""The intake app: `/v1` API, `/hooks` webhook triggers, `/u /o /c` tracking links, health, metrics.

FastAPI on uvicorn: the request models are pydantic, as the rest of mawb is, and FastAPI turns
the same models into the OpenAPI document (which the fuzz tests replay against the service).
Bodies are parsed here rather than by FastAPI's injection, so an error names the field the way a
person writes it (`events[3].contact_id`) and a single event and a batch share one endpoint.

The app never opens the store. An accepted request's records go through the group-commit spool
writer and the 202 is sent only once they are on disk; the tick loop (`mawb serve`) loads the
spool into the store, so a store busy with a tick or a reader never slows intake.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import logging
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mawb import links
from mawb.channels import webhooks
from mawb.channels.connections import resolve_secret
from mawb.service.hooks import HookDirectory, HookTarget
from mawb.service.intake import (
    FieldError,
    event_record,
    field_path,
    parse_contacts,
    parse_events,
    parse_json,
)
from mawb.service.keys import KeyRing
from mawb.service.metrics import Metrics
from mawb.service.models import ContactBatch, ContactIn, EventBatch, EventIn, check_properties
from mawb.service.ratelimit import RateLimiter
from mawb.service.replay import MAX_ID_LENGTH, ReplayGuard
from mawb.service.settings import ServiceSettings
from mawb.service.spool import SpoolWriter, spool_depth

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable
    from pathlib import Path

    from fastapi import APIRouter
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from mawb.service.keys import ApiKey

log = logging.getLogger(__name__)

# The smallest transparent GIF (1x1, 43 bytes): what mail clients expect from an open pixel.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
SCHEMAS = "#/components/schemas/"
NO_STORE = {"Cache-Control": "no-store"}


class State:
    """Everything the routes share: one per app, so tests can run several apps side by side."""

    def __init__(self, home: Path, settings: ServiceSettings,
                 on_accepted: Callable[[list[dict[str, Any]]], None] | None) -> None:
        self.home = home
        self.settings = settings
        self.spool_dir = home / "spool"
        self.metrics = Metrics(lambda: spool_depth(self.spool_dir))
        self.on_accepted = on_accepted
        self.writer = SpoolWriter(self.spool_dir, max_records=settings.flush_max_records,
                                  on_flush=self._flushed)
        self.keys = KeyRing(home)
        self.limiter = RateLimiter()
        self.hooks = HookDirectory(home)
        self.replays = ReplayGuard(settings.webhook_tolerance_seconds)
        self.recent: OrderedDict[str, asyncio.Future[str]] = OrderedDict()
        self.link_secret = links.workspace_secret(home)

    def _flushed(self, records: list[dict[str, Any]], seconds: float) -> None:
        self.metrics.flush(seconds)
        kinds: dict[str, int] = {}
        for record in records:
            kinds[record["kind"]] = kinds.get(record["kind"], 0) + 1
        for kind, count in kinds.items():
            self.metrics.accepted(kind, count)
        if self.on_accepted is not None:
            self.on_accepted(records)


class ApiError(Exception):
    """A refusal: HTTP status, a message naming the problem, the field, extra headers."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 reason: str = "invalid", headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.reason, self.headers = reason, headers or {}


def _problem(status: int, message: str, field: str | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status, headers=headers)


# --- durability and dedupe --------------------------------------------------------------------


async def _spool(state: State, records: list[dict[str, Any]]) -> None:
    """Return once `records` are on disk; ApiError 503 (nothing accepted) when the disk fails."""
    try:
        await asyncio.wrap_future(state.writer.submit(records))
    except ValueError as error:  # not encodable as strict JSON: this request only
        raise ApiError(422, f"cannot store the record: {error}") from None
    except Exception:
        log.exception("spool write failed")
        raise ApiError(503, "the spool could not be written; nothing from this request was "
                       "accepted, retry later", reason="spool_failed") from None


async def _spool_deduped(state: State, records: list[dict[str, Any]]) -> int:
    """Spool the events whose event_id was not accepted before; return how many were dropped.

    A repeat of an id still being written waits for that write: its 202 means durable too.
    """
    fresh: list[dict[str, Any]] = []
    earlier: list[asyncio.Future[str]] = []
    ids: set[str] = set()
    for record in records:
        event_id = record.get("event_id")
        if event_id in ids:
            continue
        if event_id is not None and event_id in state.recent:
            earlier.append(state.recent[event_id])
            continue
        if event_id is not None:
            ids.add(event_id)
        fresh.append(record)
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    for event_id in ids:
        state.recent[event_id] = future
    while len(state.recent) > state.settings.dedupe_window:
        state.recent.popitem(last=False)
    try:
        if fresh:
            await _spool(state, fresh)
        future.set_result("")
    except BaseException as error:
        for event_id in ids:
            if state.recent.get(event_id) is future:
                del state.recent[event_id]
        future.set_exception(error if isinstance(error, Exception) else RuntimeError())
        future.exception()  # retrieved: a waiting repeat re-raises it itself
        raise
    for earlier_future in earlier:
        await earlier_future
    duplicates = len(records) - len(fresh)
    state.metrics.duplicates(duplicates)
    return duplicates


# --- request plumbing -------------------------------------------------------------------------


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is larger than `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"body of {declared} bytes; at most {limit} accepted",
                       reason="too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body larger than {limit} bytes", reason="too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _authenticate(state: State, request: Request) -> ApiKey:
    key, why = state.keys.authenticate(request.headers.get("authorization"))
    if key is None:
        raise ApiError(401, why, reason="unauthenticated",
                       headers={"WWW-Authenticate": 'Bearer realm="mawb"'})
    wait = state.limiter.retry_after(key.id, key.rate or state.settings.default_rate)
    if wait:
        raise ApiError(429, f"rate limit of key {key.id} exceeded; retry in {wait} s",
                       reason="rate_limited", headers={"Retry-After": str(wait)})
    return key


def _accepted(records: list[dict[str, Any]], duplicates: int = 0) -> JSONResponse:
    ids = [r["event_id"] for r in records if r["kind"] == "event"]
    return JSONResponse({"accepted": len(records) - duplicates, "duplicates": duplicates,
                         "event_ids": ids}, 202)


# --- routes -----------------------------------------------------------------------------------


def _body_schema(*models: type) -> dict[str, Any]:
    refs = [{"$ref": SCHEMAS + model.__name__} for model in models]
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": text} for status, text in (
        (400, "Body is not JSON"), (401, "Missing, unknown or revoked API key"),
        (413, "Body or batch too large"), (422, "A field is invalid (named in `field`)"),
        (429, "Rate limit exceeded (see Retry-After)"))
}


def _api_routes(app: FastAPI, state: State) -> None:
    @app.post("/v1/events", status_code=202, tags=["intake"], responses=_ERRORS,
              openapi_extra={**_body_schema(EventIn, EventBatch), "security": [{"apiKey": []}]})
    async def post_events(request: Request) -> Response:
        """Record one event or a batch (`{"events": [...]}`, at most 1000) for the flows."""
        _authenticate(state, request)
        document = parse_json(await _body(request, state.settings.max_body_bytes))
        records = parse_events(document, state.settings)
        duplicates = await _spool_deduped(state, records)
        return _accepted(records, duplicates)

    @app.post("/v1/contacts", status_code=202, tags=["intake"], responses=_ERRORS,
              openapi_extra={**_body_schema(ContactIn, ContactBatch),
                             "security": [{"apiKey": []}]})
    async def post_contacts(request: Request) -> Response:
        """Upsert one contact or a batch (`{"contacts": [...]}`) by contact_id."""
        _authenticate(state, request)
        document = parse_json(await _body(request, state.settings.max_body_bytes))
        records = parse_contacts(document, state.settings)
        await _spool(state, records)
        return JSONResponse({"accepted": len(records)}, 202)


_HOOK_HEADERS = [{"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
                 for name in ("webhook-id", "webhook-timestamp", "webhook-signature")]


def _hook_routes(app: FastAPI, state: State) -> None:
    body = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["contact_id"],
        "properties": {"contact_id": {"type": "string", "minLength": 1, "maxLength": 256}}}}}},
        "parameters": _HOOK_HEADERS}

    @app.post("/hooks/{flow_id}/{node_id}", status_code=202, tags=["webhooks"],
              responses=_ERRORS, openapi_extra=body)
    async def post_hook(flow_id: str, node_id: str, request: Request) -> Response:
        """A Standard Webhooks call for a flow's webhook_trigger node (signed, fresh, once)."""
        target = state.hooks.find(flow_id, node_id)
        if target is None:
            raise ApiError(404, f"no webhook_trigger {node_id!r} in a deployed version of "
                           f"flow {flow_id!r}", reason="unknown_hook")
        raw = await _body(request, state.settings.max_body_bytes)
        key = _hook_key(state, target)
        try:
            webhook_id = webhooks.verify(key, request.headers, raw, tolerance_seconds=int(
                state.settings.webhook_tolerance_seconds))
        except webhooks.WebhookSignatureError as error:
            raise ApiError(401, f"unsigned or badly signed request: {error}",
                           reason="bad_signature") from None
        if len(webhook_id) > MAX_ID_LENGTH:
            raise ApiError(400, f"webhook-id longer than {MAX_ID_LENGTH} characters",
                           field="webhook-id")
        scope = f"{flow_id}/{target.node_id}"
        if not state.replays.claim(scope, webhook_id):
            raise ApiError(409, f"webhook-id {webhook_id!r} was already accepted (replay)",
                           field="webhook-id", reason="replay")
        try:
            record = _hook_record(parse_json(raw), target, webhook_id, state.settings)
            await _spool(state, [record])
        except BaseException:
            state.replays.release(scope, webhook_id)
            raise
        return _accepted([record])


def _hook_key(state: State, target: HookTarget) -> bytes:
    """The node's signing key, resolved now (a rotated secret needs no restart)."""
    try:
        return webhooks.secret_bytes(resolve_secret(target.secret_ref, state.home))
    except ValueError as error:  # SecretError, or not whsec_<base64>
        log.error("webhook %s/%s: %s", target.flow_id, target.node_id, error)
        raise ApiError(503, f"webhook {target.flow_id}/{target.node_id} is not configured: its "
                       f"secret {target.secret_ref} is unavailable or not whsec_<base64>",
                       reason="hook_secret_unavailable") from None


def _hook_record(document: Any, target: HookTarget, webhook_id: str,
                 settings: ServiceSettings) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise FieldError("body must be a JSON object naming the contact (contact_id)")
    contact_id = document.get("contact_id")
    if not isinstance(contact_id, str) or not contact_id.strip() or len(contact_id) > 256:
        raise FieldError("contact_id: required, a non-empty string (at most 256 characters)",
                         "contact_id")
    properties = {k: v for k, v in document.items() if k != "contact_id"}
    try:
        check_properties(properties, settings)
    except ValueError as error:
        raise FieldError(f"body: {error}", "body") from None
    return event_record(contact_id.strip(), target.event, datetime.now(UTC), properties,
                        f"webhook:{target.flow_id}:{target.node_id}",
                        f"{target.flow_id}:{target.node_id}:{webhook_id}")


def _link_routes(app: FastAPI, state: State) -> None:
    @app.get("/u/{token}", response_class=HTMLResponse, tags=["links"])
    async def unsubscribe_page(token: str) -> Response:
        """A confirmation page; its button sends the same POST as a one-click mail client."""
        _verified(state, token, "u")
        return HTMLResponse(_page("Unsubscribe", "Stop receiving these messages?",
                                  form=True), headers=NO_STORE)

    @app.post("/u/{token}", response_class=HTMLResponse, tags=["links"],
              openapi_extra={"requestBody": {"content": {
                  "application/x-www-form-urlencoded": {"schema": {
                      "type": "object", "properties": {"List-Unsubscribe": {
                          "type": "string", "enum": ["One-Click"]}}}}}}})
    async def unsubscribe(token: str, request: Request) -> Response:
        """RFC 8058 one-click unsubscribe (body `List-Unsubscribe=One-Click`)."""
        payload = _verified(state, token, "u")
        form = parse_qs((await _body(request, 4096)).decode("utf-8", "replace"))
        if form.get("List-Unsubscribe") != ["One-Click"]:
            raise ApiError(400, "expected the form body List-Unsubscribe=One-Click (RFC 8058)",
                           field="List-Unsubscribe")
        event_id = "unsubscribe:" + hashlib.sha256(token.encode()).hexdigest()[:32]
        record = _link_record(payload, "unsubscribe", event_id=event_id)
        await _spool_deduped(state, [record])
        return HTMLResponse(_page("Unsubscribed", "You will not receive these messages "
                                  "any more."), headers=NO_STORE)

    @app.get("/o/{token}", tags=["links"], response_class=Response,
             responses={200: {"content": {"image/gif": {}}}})
    async def open_pixel(token: str) -> Response:
        """The open pixel: records `email_open`, answers a transparent 1x1 GIF."""
        await _spool(state, [_link_record(_verified(state, token, "o"), "email_open")])
        return Response(PIXEL, media_type="image/gif", headers=NO_STORE)

    @app.get("/c/{token}", tags=["links"], status_code=302, response_class=Response)
    async def click(token: str) -> Response:
        """Records `email_click` and redirects to the URL signed into the token (only)."""
        payload = _verified(state, token, "c")
        url = payload.get("url")
        if not _http_url(url):
            raise ApiError(400, "this link has no valid http(s) target", reason="bad_token")
        await _spool(state, [_link_record(payload, "email_click", url=url)])
        return Response(status_code=302, headers={"Location": _location(url), **NO_STORE})


def _verified(state: State, token: str, kind: str) -> dict[str, Any]:
    try:
        payload = links.verify(state.link_secret, token, kind)
    except links.BadToken as error:
        raise ApiError(404, f"this link is not valid ({error})", reason="bad_token") from None
    contact_id = payload.get("c")
    if not isinstance(contact_id, str) or not contact_id:
        raise ApiError(400, "this link names no contact", reason="bad_token")
    return payload


def _http_url(url: object) -> TypeGuard[str]:
    if not isinstance(url, str) or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


def _location(url: str) -> str:
    """The URL as an ASCII header value (non-ASCII characters percent-encoded, UTF-8)."""
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~")


def _link_record(payload: dict[str, Any], name: str, event_id: str | None = None,
                 **extra: Any) -> dict[str, Any]:
    properties = {"flow_id": payload.get("f"), "version": payload.get("v"),
                  "node_id": payload.get("n"), "message_key": payload.get("k"), **extra}
    return event_record(payload["c"], name, datetime.now(UTC),
                        {k: v for k, v in properties.items() if v is not None}, "link", event_id)


def _page(title: str, text: str, form: bool = False) -> str:
    button = ('<form method="post"><input type="hidden" name="List-Unsubscribe" '
              'value="One-Click"><button type="submit">Unsubscribe</button></form>'
              if form else "")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width"><title>{html.escape(title)}</title></head>'
            f'<body style="font-family:sans-serif;max-width:32em;margin:3em auto">'
            f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{button}</body></html>")


def _ops_routes(app: FastAPI, state: State) -> None:
    @app.get("/health", tags=["operations"])
    async def health() -> Response:
        """200 while the spool writer runs (503 otherwise), with the spool depth."""
        alive = state.writer.alive
        return JSONResponse({"status": "ok" if alive else "spool writer stopped",
                             "spool_depth": spool_depth(state.spool_dir)},
                            200 if alive else 503)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    async def metrics() -> Response:
        """Prometheus text format."""
        return PlainTextResponse(state.metrics.render(),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")


# --- errors, metrics middleware, OpenAPI ------------------------------------------------------


def _error_handlers(app: FastAPI, state: State) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        state.metrics.refused(error.reason)
        if request.url.path.startswith("/u/") and request.method == "GET":
            return HTMLResponse(_page("Link not valid", error.message), error.status)
        return _problem(error.status, error.message, error.field, error.headers)

    @app.exception_handler(FieldError)
    async def field_error(request: Request, error: FieldError) -> Response:
        state.metrics.refused(error.reason)
        return _problem(error.status, error.message, error.field)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0]
        loc = tuple(first.get("loc", ()))
        path = field_path(loc[1:] if loc[:1] in {("body",), ("path",), ("header",),
                                                  ("query",)} else loc)
        state.metrics.refused("invalid")
        return _problem(422, f"{path}: {first.get('msg', 'invalid')}", path or None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        return _problem(error.status_code, str(error.detail), None,
                        dict(error.headers or {}))


class _RequestMetrics:
    """Counts every response by method, route template and status (pure ASGI: no overhead
    of a per-request task)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.request(scope["method"], route, status)


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            components = schema.setdefault("components", {})
            models = components.setdefault("schemas", {})
            for model in (EventIn, EventBatch, ContactIn, ContactBatch):
                document = model.model_json_schema(ref_template=SCHEMAS + "{model}")
                models.update(document.pop("$defs", {}))
                models[model.__name__] = document
            components["securitySchemes"] = {"apiKey": {
                "type": "http", "scheme": "bearer",
                "description": "mawb_<id>_<secret> from `mawb keys create NAME`"}}
            app.openapi_schema = schema
        return app.openapi_schema

    return build


def create_app(home: Path, *, on_accepted: Callable[[list[dict[str, Any]]], None] | None = None,
               settings: ServiceSettings | None = None,
               extra_routers: Iterable[APIRouter] = ()) -> FastAPI:
    """The intake app of the workspace at `home`.

    `on_accepted(records)` runs after each spool flush, on the writer thread, with the records
    just made durable (the tick loop uses it to wake event-triggered flows); keep it quick.
    `extra_routers` are mounted as they are (the service's own command routes).
    """
    state = State(home, settings or ServiceSettings(), on_accepted)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.writer.start()
        try:
            yield
        finally:
            state.writer.stop()

    app = FastAPI(title="mawb service", version="1", lifespan=lifespan,
                  description="Event intake, webhook triggers and tracking links of one mawb "
                  "workspace. Accepted records are durable before the 202.")
    app.state.mawb = state
    _api_routes(app, state)
    _hook_routes(app, state)
    _link_routes(app, state)
    _ops_routes(app, state)
    for router in extra_routers:
        app.include_router(router)
    _error_handlers(app, state)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(_RequestMetrics, metrics=state.metrics)
    return app

