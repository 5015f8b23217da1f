"""Trigger node types: how contacts enter a flow.

Triggers have no input; each enrolls contacts (honouring the flow's `reentry` setting) and
passes them down its single output.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mawb.nodes.base import (
    SECRET_HELP,
    SECRET_REF,
    Category,
    NodeType,
    Params,
    TriggerKind,
    shorten,
)
from mawb.nodes.registry import register

_SCHEDULE_HELP = (
    "When the audience is enrolled: @once (first tick), @hourly, @daily, @weekly, @monthly "
    "or a 5-field cron expression in the flow's timezone"
)


class TimeBasedParams(Params):
    audience: str | None = Field(
        None, description="Condition selecting who enters, e.g. lifecycle = 'lead'; empty = all"
    )
    schedule: str = Field("@once", description=_SCHEDULE_HELP)
    date_field: str | None = Field(
        None, description="Enroll relative to this date attribute instead (e.g. signup_date)"
    )
    offset_days: float = Field(
        0, ge=-365, le=365, description="Days after (negative: before) date_field to enroll"
    )

    @field_validator("schedule")
    @classmethod
    def _schedule_shape(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("@"):
            allowed = {"@once", "@hourly", "@daily", "@weekly", "@monthly"}
            if value not in allowed:
                raise ValueError(f"unknown schedule {value!r}; use one of {sorted(allowed)}")
        elif len(value.split()) != 5:
            raise ValueError("a cron schedule has 5 fields: minute hour day month weekday")
        return value


@register
class TimeBasedTrigger(NodeType):
    type = "time_based_trigger"
    category = Category.TRIGGER
    label = "Scheduled audience"
    icon = "clock"
    help = "Enroll an audience on a schedule, or relative to a date attribute."
    params_model = TimeBasedParams
    trigger_kind = TriggerKind.TIME
    condition_fields = ("audience",)

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, TimeBasedParams)
        when = (
            f"{params.date_field} {params.offset_days:+g}d"
            if params.date_field
            else params.schedule
        )
        return shorten(f"{when} · {params.audience or 'everyone'}")


class BehavioralParams(Params):
    events: list[str] = Field(
        default_factory=lambda: ["page_view"],
        min_length=1,
        description="Behaviour events that count (page_view, email_open, content_download, ...)",
    )
    min_count: int = Field(1, ge=1, le=1_000_000, description="Events needed within the window")
    within_days: float | None = Field(
        7, gt=0, le=3650, description="Window length in days; empty = all history"
    )
    audience: str | None = Field(None, description="Extra condition on contact attributes")


@register
class BehavioralTrigger(NodeType):
    type = "behavioral_trigger"
    category = Category.TRIGGER
    label = "Behaviour"
    icon = "activity"
    help = "Enroll contacts whose behaviour events reach a count within a time window."
    params_model = BehavioralParams
    trigger_kind = TriggerKind.BEHAVIORAL
    condition_fields = ("audience",)

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, BehavioralParams)
        window = f" in {params.within_days:g}d" if params.within_days else ""
        return shorten(f"≥{params.min_count} of {', '.join(params.events)}{window}")


class EventParams(Params):
    event: str = Field("customer_signup", min_length=1, description="Business event name")
    where: str | None = Field(
        None, description="Condition on the event's properties, e.g. plan = 'pro'"
    )
    audience: str | None = Field(None, description="Extra condition on contact attributes")


@register
class EventTrigger(NodeType):
    type = "event_trigger"
    category = Category.TRIGGER
    label = "Business event"
    icon = "zap"
    help = "Enroll a contact when a named business event (signup, form submission) arrives."
    params_model = EventParams
    trigger_kind = TriggerKind.EVENT
    condition_fields = ("audience",)
    event_condition_fields = ("where",)

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, EventParams)
        return shorten(params.event + (f" where {params.where}" if params.where else ""))


class WebhookParams(Params):
    path: str = Field(
        "events",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
        description="Endpoint name: events are POSTed to /hooks/<flow id>/<path>",
    )
    secret: str = Field(
        "env:MAWB_WEBHOOK_SECRET",
        pattern=SECRET_REF,
        description=f"The HMAC secret. {SECRET_HELP}",
    )
    event: str = Field("webhook", min_length=1, description="Event name recorded for each call")
    where: str | None = Field(None, description="Condition on the posted payload")


@register
class WebhookTrigger(NodeType):
    type = "webhook_trigger"
    category = Category.TRIGGER
    label = "Webhook"
    icon = "webhook"
    help = "Enroll contacts named in authenticated HTTP events posted to this flow."
    params_model = WebhookParams
    trigger_kind = TriggerKind.WEBHOOK
    event_condition_fields = ("where",)

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, WebhookParams)
        return shorten(f"POST /hooks/…/{params.path}")


class ManualParams(Params):
    list_name: str = Field("manual", min_length=1, description="Name of the uploaded list")
    contacts: list[str] = Field(
        default_factory=list, description="Contact ids to enroll at the next tick (small lists)"
    )
    source: Literal["cli", "api", "ui"] = Field("ui", description="Where lists usually come from")


@register
class ManualTrigger(NodeType):
    type = "manual_trigger"
    category = Category.TRIGGER
    label = "Manual list"
    icon = "hand"
    help = "Enroll an explicit list of contacts (CLI `mawb enroll`, API or upload)."
    params_model = ManualParams
    trigger_kind = TriggerKind.MANUAL

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, ManualParams)
        return shorten(f"list {params.list_name} ({len(params.contacts)} inline)")
