"""Request bodies of the intake API, as pydantic models (they are also the OpenAPI schemas).

Bounds that depend on the service's settings (how far a timestamp may be from now, how large
and deep properties may be) are checked inside the models with the settings passed as the
validation context, so every refusal comes back from one place with the field's path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from mawb.service.settings import ServiceSettings

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
EventName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128,
                                             pattern=r"^[^\x00-\x1f\x7f]+$")]
ClientEventId = Annotated[str, StringConstraints(min_length=1, max_length=128,
                                                 pattern=r"^[\x21-\x7e]+$")]


def _settings(info: ValidationInfo) -> ServiceSettings:
    context = info.context or {}
    return context.get("settings") or ServiceSettings()


def _bounds(value: Any, level: int = 0) -> tuple[int, int]:
    """(nesting depth, an upper bound of the JSON size in bytes) in one pass, so the common
    small object needs no serialisation to be checked."""
    if isinstance(value, dict):
        depth, size = level + 1, 2
        for key, item in value.items():
            item_depth, item_size = _bounds(item, level + 1)
            depth = max(depth, item_depth)
            size += 6 * len(key) + 4 + item_size
        return depth, size
    if isinstance(value, list):
        depth, size = level + 1, 2
        for item in value:
            item_depth, item_size = _bounds(item, level + 1)
            depth, size = max(depth, item_depth), size + item_size + 1
        return depth, size
    if isinstance(value, str):
        return level, 6 * len(value) + 2  # every character escaped as \uXXXX at worst
    if isinstance(value, int) and not isinstance(value, bool):
        return level, value.bit_length() // 3 + 3
    return level, 32  # floats, booleans, null


def _flat_bound(value: dict[str, Any]) -> int | None:
    """The size bound of an object whose values are all short scalars (the common event), in
    one loop without recursion; None when a value is a container or a huge integer."""
    size = 2
    for key, item in value.items():
        if isinstance(item, str):
            size += 6 * (len(key) + len(item)) + 8
        elif item is None or isinstance(item, float) or (
                isinstance(item, int) and item.bit_length() < 64):
            size += 6 * len(key) + 28
        else:
            return None
    return size


def check_properties(value: dict[str, Any], settings: ServiceSettings) -> dict[str, Any]:
    """A JSON object within the size and nesting bounds (raises ValueError saying which)."""
    flat = _flat_bound(value)
    depth, bound = (1, flat) if flat is not None else _bounds(value)
    if depth > settings.max_properties_depth:
        raise ValueError(f"nested {depth} levels deep; at most "
                         f"{settings.max_properties_depth} allowed")
    if bound <= settings.max_properties_bytes:
        return value
    try:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False).encode())
    except ValueError:
        raise ValueError("numbers must be finite (no NaN or Infinity)") from None
    if size > settings.max_properties_bytes:
        raise ValueError(f"{size} bytes as JSON; at most {settings.max_properties_bytes} allowed")
    return value


class EventIn(BaseModel):
    """One behaviour or business event about a contact."""

    model_config = ConfigDict(extra="forbid")

    contact_id: Id = Field(description="The contact the event is about")
    name: EventName = Field(description="Event name, e.g. page_view, customer_signup, purchase")
    ts: datetime | None = Field(
        None, description="When it happened (ISO 8601; no offset means UTC); default: now")
    properties: dict[str, Any] = Field(default_factory=dict,
                                       description="Event properties (a JSON object)")
    event_id: ClientEventId | None = Field(
        None, description="Your id for the event; a repeat of an accepted id is dropped")

    @field_validator("ts")
    @classmethod
    def _recent(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        try:
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except OverflowError:  # year 1 or 9999 with an offset
            raise ValueError(f"{value.isoformat()} is out of range") from None
        settings = _settings(info)
        now = datetime.now(UTC)
        if value > now + timedelta(seconds=settings.max_future_seconds):
            raise ValueError(f"{value.isoformat()} is more than "
                             f"{settings.max_future_seconds:g} s in the future")
        if value < now - timedelta(seconds=settings.max_past_seconds):
            raise ValueError(f"{value.isoformat()} is older than "
                             f"{settings.max_past_seconds / 86400:g} days; load history with "
                             "`mawb ingest FILE`")
        return value

    @field_validator("properties")
    @classmethod
    def _bounded(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return check_properties(value, _settings(info))


class EventBatch(BaseModel):
    """Up to 1000 events in one request (what SDKs send)."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=1000)


class ContactIn(BaseModel):
    """A contact's attributes, upserted by contact_id as `mawb import-contacts` does (the
    record replaces the stored contact).

    Known attributes (email, timezone, email_consent, ...) are checked as `mawb import-contacts`
    checks them; other attribute names become contact columns and must be lower_snake_case.
    """

    # Other attributes are checked by the intake rules (mawb.service.intake), not here, so
    # their errors name the attribute alone; the schema still says what they may be.
    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": {
        "anyOf": [{"type": t} for t in ("string", "number", "boolean", "null")]}})

    contact_id: Id


class ContactBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contacts: list[ContactIn] = Field(min_length=1, max_length=1000)


class Accepted(BaseModel):
    """The answer to an accepted request: everything in it is durably spooled."""

    accepted: int = Field(description="Records written to the spool by this request")
    duplicates: int = Field(0, description="Events dropped: their event_id was accepted before")
    event_ids: list[str] = Field(default_factory=list,
                                 description="The id of every event, in request order")


class Problem(BaseModel):
    error: str
    field: str | None = None
