"""Turn request bodies into spool records, or one error naming the field that is wrong.

Events are checked by the pydantic models (`mawb.service.models`); contacts by the same rules as
`mawb import-contacts` (`mawb.intake.read_contacts`), so a value the CLI refuses is refused here
with the same words, and the spooled record is exactly what the loader will accept.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mawb.service.models import ContactBatch, ContactIn, EventBatch, EventIn

if TYPE_CHECKING:
    from mawb.service.settings import ServiceSettings

ATTRIBUTE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MAX_ATTRIBUTE_TEXT = 4096


class FieldError(ValueError):
    """A refused request: `message` for people, `field` the path of the offending value."""

    def __init__(self, message: str, field: str | None = None, status: int = 422,
                 reason: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.reason = reason


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """`("events", 3, "contact_id")` -> `events[3].contact_id`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise FieldError("empty body: send a JSON object", status=400, reason="malformed")
    try:
        return json.loads(body, parse_constant=_no_constants, parse_float=_finite)
    except (ValueError, RecursionError) as error:
        raise FieldError(f"body is not valid JSON: {error}", status=400,
                         reason="malformed") from None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:40]} is out of range")
    return number


def _from_validation(error: ValidationError, prefix: tuple[Any, ...] = ()) -> FieldError:
    first = error.errors(include_url=False)[0]
    path = field_path((*prefix, *first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    return FieldError(f"{path}: {message}" if path else message, path or None)


def parse_events(document: Any, settings: ServiceSettings) -> list[dict[str, Any]]:
    """Event records from one event object or `{"events": [...]}`."""
    if not isinstance(document, dict):
        raise FieldError("body must be a JSON object: one event or {\"events\": [...]}")
    context = {"settings": settings}
    try:
        if "events" in document:
            _check_batch(document["events"], "events", settings)
            events = EventBatch.model_validate(document, context=context).events
        else:
            events = [EventIn.model_validate(document, context=context)]
    except ValidationError as error:
        raise _from_validation(error) from None
    now = datetime.now(UTC)
    return [event_record(e.contact_id, e.name, e.ts or now, e.properties, "api", e.event_id)
            for e in events]


def event_record(contact_id: str, name: str, ts: datetime, properties: dict[str, Any],
                 source: str, event_id: str | None = None) -> dict[str, Any]:
    """A spool `event` record (docs/architecture.md, section 5)."""
    return {"kind": "event", "event_id": event_id or uuid.uuid4().hex, "contact_id": contact_id,
            "name": name, "ts": ts.astimezone(UTC).isoformat(), "properties": properties,
            "source": source}


def _check_batch(items: Any, name: str, settings: ServiceSettings) -> None:
    if isinstance(items, list) and len(items) > settings.max_batch:
        raise FieldError(f"{name}: {len(items)} items; at most {settings.max_batch} per request",
                         name, status=413, reason="too_many")


def parse_contacts(document: Any, settings: ServiceSettings) -> list[dict[str, Any]]:
    """Contact records from one contact object or `{"contacts": [...]}`."""
    if not isinstance(document, dict):
        raise FieldError("body must be a JSON object: one contact or {\"contacts\": [...]}")
    batch = "contacts" in document and isinstance(document.get("contacts"), list)
    try:
        if batch:
            _check_batch(document["contacts"], "contacts", settings)
            contacts = ContactBatch.model_validate(document).contacts
        else:
            contacts = [ContactIn.model_validate(document)]
    except ValidationError as error:
        raise _from_validation(error) from None
    rows = [{"contact_id": c.contact_id, **(c.model_extra or {})} for c in contacts]
    for index, row in enumerate(rows):
        _check_attributes(row, f"contacts[{index}]." if batch else "")
    _check_intake_rules(rows, "contacts" if batch else None)
    return [{"kind": "contact", "contact": row} for row in rows]


def _check_attributes(row: dict[str, Any], prefix: str) -> None:
    for name, value in row.items():
        field = f"{prefix}{name}"
        if not ATTRIBUTE_NAME.match(name):
            raise FieldError(f"{field}: attribute names are lower_snake_case "
                             "(a-z, 0-9, _; at most 63 characters)", field)
        if isinstance(value, dict | list):
            raise FieldError(f"{field}: an attribute is a string, number, boolean or null",
                             field)
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_TEXT:
            raise FieldError(f"{field}: longer than {MAX_ATTRIBUTE_TEXT} characters", field)


def _check_intake_rules(rows: list[dict[str, Any]], batch: str | None) -> None:
    import pandas as pd  # the contact rules need it; event intake (the hot path) does not

    from mawb.intake import IntakeError, read_contacts

    try:
        read_contacts(pd.DataFrame(rows))
    except IntakeError as error:
        problem = error.problems[0]
        index = (problem.row or 1) - 1
        where = f"{batch}[{index}]" if batch else ""
        field = ".".join(part for part in (where, problem.column or "") if part) or None
        more = len(error.problems) - 1
        suffix = f" (+{more} more problem{'s' * (more != 1)})" if more else ""
        raise FieldError(f"{field or 'body'}: {problem.message}{suffix}", field) from None
