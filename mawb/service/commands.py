"""The service's own routes: writes other processes ask the one writer to make.

`POST /v1/commands` takes one command or `{"commands": [...]}` (lifecycle, deploy, enroll,
import, move; docs/architecture.md, "The service loop and lifecycle"), checks its shape, and spools
it like any accepted batch — durable before the 202 — for the loop to apply in order, each
recorded in `service_commands` with its outcome. `POST /v1/flows/{flow_id}/{live|pause|stop}`
is the Builder's and Monitor's lifecycle button; `GET /v1/service` is the loop's own view
(live flows, their next tick, last errors) without touching the store. All behind API keys.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mawb.engine import lifecycle
from mawb.service.app import ApiError

if TYPE_CHECKING:
    from mawb.service.loop import ServiceLoop

ACTIONS = {"live": lifecycle.State.LIVE, "pause": lifecycle.State.PAUSED,
           "resume": lifecycle.State.LIVE, "stop": lifecycle.State.STOPPED}
_REQUIRED = {
    "lifecycle": ("flow_id", "state"),
    "deploy": ("flow",),
    "enroll": ("flow_id", "node_id", "contact_ids"),
    "import": ("what", "rows"),
    "move": ("flow_id", "from_version", "to_version"),
}
MAX_COMMANDS = 100


def check_command(item: Any, where: str) -> dict[str, Any]:
    """A command record with the fields its kind needs (ApiError 422 naming the field)."""
    if not isinstance(item, dict):
        raise ApiError(422, f"{where}: a command is a JSON object", field=where)
    name = item.get("command")
    if name not in _REQUIRED:
        raise ApiError(422, f"{where}.command: {name!r} is not a command "
                       f"(known: {', '.join(_REQUIRED)})", field=f"{where}.command")
    for key in _REQUIRED[name]:
        if item.get(key) in (None, "", []):
            raise ApiError(422, f"{where}.{key}: required for {name}", field=f"{where}.{key}")
    if name == "lifecycle" and item["state"] not in {s.value for s in lifecycle.State}:
        raise ApiError(422, f"{where}.state: expected one of "
                       f"{', '.join(s.value for s in lifecycle.State)}", field=f"{where}.state")
    if name == "enroll" and not (isinstance(item["contact_ids"], list)
                                 and all(isinstance(c, str) for c in item["contact_ids"])):
        raise ApiError(422, f"{where}.contact_ids: a list of contact ids",
                       field=f"{where}.contact_ids")
    if name == "import" and (item["what"] not in ("contacts", "events")
                             or not isinstance(item["rows"], list)):
        raise ApiError(422, f"{where}: import needs what (contacts|events) and a rows list",
                       field=where)
    if name == "move":
        _check_move(item, where)
    if name == "deploy" and not isinstance(item["flow"], dict):
        raise ApiError(422, f"{where}.flow: a flow document (object)", field=f"{where}.flow")
    return {**item, "kind": "command"}


def _check_move(item: dict[str, Any], where: str) -> None:
    for key in ("from_version", "to_version"):
        if not isinstance(item[key], int) or isinstance(item[key], bool) or item[key] < 1:
            raise ApiError(422, f"{where}.{key}: a version number (1 or more)",
                           field=f"{where}.{key}")
    mapping = item.get("mapping")
    if mapping is not None and not (isinstance(mapping, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())):
        raise ApiError(422, f"{where}.mapping: an object of old node id -> new node id",
                       field=f"{where}.mapping")


def router(loop: ServiceLoop | None = None) -> APIRouter:
    """The command routes; `loop` answers `GET /v1/service` (absent: 404)."""
    routes = APIRouter(tags=["service"])

    @routes.post("/v1/commands", status_code=202)
    async def post_commands(request: Request) -> JSONResponse:
        """Queue commands for the one writer; they apply in order within about a second."""
        key = _authenticate(request)
        document = await _json(request)
        items = document.get("commands") if isinstance(document, dict) and (
            "commands" in document) else [document]
        if not isinstance(items, list) or not items or len(items) > MAX_COMMANDS:
            raise ApiError(422, f"commands: a list of 1 to {MAX_COMMANDS} commands",
                           field="commands")
        where = "commands[{}]" if len(items) > 1 or "commands" in document else "body"
        records = [_signed(check_command(item, where.format(i)), key)
                   for i, item in enumerate(items)]
        receipt = await _spool(request, records)
        return JSONResponse({"accepted": len(records), "receipt": receipt}, 202)

    @routes.post("/v1/flows/{flow_id}/{action}", status_code=202)
    async def post_lifecycle(flow_id: str, action: str, request: Request) -> JSONResponse:
        """Set a flow live, pause, resume or stop it (recorded with the key's name)."""
        key = _authenticate(request)
        if action not in ACTIONS:
            raise ApiError(404, f"no action {action!r} (actions: {', '.join(ACTIONS)})",
                           field="action")
        record = _signed({"kind": "command", "command": "lifecycle", "flow_id": flow_id,
                          "state": ACTIONS[action].value}, key)
        receipt = await _spool(request, [record])
        return JSONResponse({"accepted": 1, "receipt": receipt}, 202)

    @routes.get("/v1/service")
    async def get_service(request: Request) -> JSONResponse:
        """The loop's view: live flows, next and last tick, last error, spool backlog."""
        _authenticate(request)
        if loop is None:
            raise ApiError(404, "this app runs without the tick loop", reason="no_loop")
        return JSONResponse(loop.status())

    return routes


def _state(request: Request) -> Any:
    return request.app.state.mawb


def _authenticate(request: Request) -> Any:
    key, why = _state(request).keys.authenticate(request.headers.get("authorization"))
    if key is None:
        raise ApiError(401, why, reason="unauthenticated",
                       headers={"WWW-Authenticate": 'Bearer realm="mawb"'})
    return key


async def _json(request: Request) -> Any:
    from mawb.service.intake import parse_json

    limit = _state(request).settings.max_body_bytes
    body = await request.body()
    if len(body) > limit:
        raise ApiError(413, f"body larger than {limit} bytes", reason="too_large")
    return parse_json(body)


def _signed(record: dict[str, Any], key: Any) -> dict[str, Any]:
    return {**record, "by": f"key:{getattr(key, 'name', None) or getattr(key, 'id', '?')}",
            "at": datetime.now(UTC).isoformat()}


async def _spool(request: Request, records: list[dict[str, Any]]) -> str:
    try:
        return await asyncio.wrap_future(_state(request).writer.submit(records))
    except ValueError as error:
        raise ApiError(422, f"cannot store the command: {error}") from None
