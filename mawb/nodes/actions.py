"""Action node types: messages, waits, attribute updates and HTTP calls.

Sending actions render Liquid and hand the message to the outbox (which enforces consent,
quiet hours and frequency caps); the contact moves on at once.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mawb.nodes.base import (
    SECRET_HELP,
    SECRET_REF,
    Category,
    Message,
    NodeType,
    Outputs,
    Params,
    shorten,
)
from mawb.nodes.registry import register
from mawb.protected import PROTECTED_COLUMNS, is_protected, protected_message

ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Attributes the engine owns; flows may read them but never write them (mawb.protected).
PROTECTED_ATTRIBUTES = PROTECTED_COLUMNS


# Names that carry credentials: their values must be secret references, never literals.
_SECRET_NAME = re.compile(r"(authorization|cookie|token|secret|passw|api[-_]?key|"
                          r"credential|private[-_]?key|signature)", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """Whether a header or param name says its value is a credential."""
    return bool(_SECRET_NAME.search(name))


def check_attribute_names(names: list[str] | dict[str, Any], written: bool = True) -> None:
    """Raise ValueError for names that are not plain identifiers or, when `written`, are
    consent, suppression or engine-owned columns."""
    for name in names:
        if not isinstance(name, str) or not ATTRIBUTE.match(name):
            raise ValueError(f"{name!r} is not a valid attribute name (letters, digits, _)")
        if written and is_protected(name):
            raise ValueError(protected_message(name))


CONNECTION_HELP = ("Named connection (connections.yaml) delivering this node; empty = the flow's "
                   "connection for the channel, or the sandbox")
ConnectionName = Field(None, pattern=r"^[a-z][a-z0-9_-]{0,62}$", description=CONNECTION_HELP)
Audience = Literal["contact", "internal"]


class EmailParams(Params):
    subject: str = Field("Hello {{ first_name | default: 'there' }}", min_length=1,
                         description="Subject line (Liquid)")
    body: str = Field("Hi {{ first_name | default: 'there' }},", min_length=1,
                      description="Message body (Liquid; HTML allowed)")
    preheader: str = Field("", description="Preview text shown by mail clients (Liquid)")
    to: str | None = Field(
        None,
        description="Override recipient (Liquid), e.g. sales@example.com for internal alerts; "
        "empty = the contact's email",
    )
    sender: str = Field("default", description="Sender profile name (from address, reply-to)")
    html: str | None = Field(None, description="HTML body (Liquid); the text body stays the "
                             "plain-text part")
    audience: Audience | None = Field(
        None, description="contact: marketing to the contact (consent, caps and quiet hours "
        "apply); internal: a notification to a fixed address about the contact (they do not). "
        "Empty = internal when `to` is a fixed address, contact otherwise")
    connection: str | None = ConnectionName

    @model_validator(mode="after")
    def _internal_needs_address(self) -> EmailParams:
        if self.audience == "internal" and (not self.to or "{{" in self.to):
            raise ValueError("audience internal needs a fixed `to` address (e.g. "
                             "sales@example.com)")
        return self

    def resolved_audience(self) -> str:
        """The audience the outbox applies: explicit, else by the kind of recipient."""
        if self.audience is not None:
            return self.audience
        return "internal" if self.to and "{{" not in self.to else "contact"


@register
class EmailSend(NodeType):
    type = "email_send"
    category = Category.ACTION
    label = "Send email"
    icon = "mail"
    help = "Render a personalised email and send it through the outbox."
    params_model = EmailParams
    outbox_channel = "email"
    message = Message.EMAIL
    channel = "email"
    template_fields = ("subject", "body", "preheader", "to", "html")

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, EmailParams)
        return shorten(params.subject)


class SmsParams(Params):
    body: str = Field("Hi {{ first_name }}", min_length=1, max_length=1600,
                      description="Text message (Liquid)")
    sender: str = Field("default", description="Sender id / number profile")
    connection: str | None = ConnectionName


@register
class SmsSend(NodeType):
    type = "sms_send"
    category = Category.ACTION
    label = "Send SMS"
    icon = "message"
    help = "Send a personalised text message to the contact's phone."
    params_model = SmsParams
    outbox_channel = "sms"
    message = Message.SMS
    channel = "sms"
    template_fields = ("body",)

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, SmsParams)
        return shorten(params.body)


class PushParams(Params):
    title: str = Field("News for you", min_length=1, max_length=120, description="Title (Liquid)")
    body: str = Field("", max_length=500, description="Body text (Liquid)")
    url: str | None = Field(None, description="Page opened on click (Liquid)")
    connection: str | None = ConnectionName


@register
class WebPush(NodeType):
    type = "web_push"
    category = Category.ACTION
    label = "Web push"
    icon = "bell"
    help = "Send a browser push notification to subscribed contacts."
    params_model = PushParams
    outbox_channel = "web_push"
    message = Message.PUSH
    channel = "web_push"
    template_fields = ("title", "body", "url")

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, PushParams)
        return shorten(params.title)


Network = Literal["twitter", "linkedin", "facebook", "instagram"]


class SocialParams(Params):
    networks: list[Network] = Field(
        default_factory=lambda: list[Network](["twitter"]), min_length=1,
        description="Networks to post to"
    )
    text: str = Field("Something new is here.", min_length=1, max_length=3000,
                      description="Post text (Liquid over flow params, not contacts)")
    link: str | None = Field(None, description="Link attached to the post")
    connection: str | None = ConnectionName


@register
class SocialPost(NodeType):
    type = "social_post"
    category = Category.ACTION
    label = "Social post"
    icon = "share"
    help = "Publish one post per network each time contacts pass (not one per contact)."
    params_model = SocialParams
    outbox_channel = "social"
    message = Message.SOCIAL
    channel = "social"
    template_fields = ("text",)

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, SocialParams)
        return shorten(f"{', '.join(params.networks)}: {params.text}")


_LOCAL_TIME = r"^([01]\d|2[0-3]):[0-5]\d$"


class DelayParams(Params):
    days: float = Field(0, ge=0, le=3650, description="Days to wait")
    hours: float = Field(0, ge=0, le=10000, description="Hours to wait")
    minutes: float = Field(0, ge=0, le=100000, description="Minutes to wait")
    until_field: str | None = Field(
        None, description="Wait until this date/time attribute instead (e.g. trial_end_date)"
    )
    offset_days: float = Field(0, ge=-365, le=365, description="Days added to until_field")
    at_local_time: str | None = Field(
        None, pattern=_LOCAL_TIME,
        description="Then wait for the next HH:MM in the contact's timezone",
    )

    @model_validator(mode="after")
    def _one_mode(self) -> DelayParams:
        if not self.model_fields_set:
            self.days = 1  # a freshly dropped delay waits one day
        duration = self.days or self.hours or self.minutes
        if self.until_field and duration:
            raise ValueError("use either a duration (days/hours/minutes) or until_field, not both")
        if not (duration or self.until_field or self.at_local_time):
            raise ValueError("set a duration, until_field or at_local_time")
        if self.until_field:
            check_attribute_names([self.until_field], written=False)
        return self

    def seconds(self) -> float:
        return self.days * 86400 + self.hours * 3600 + self.minutes * 60


@register
class DelayAction(NodeType):
    type = "delay_action"
    category = Category.ACTION
    label = "Delay"
    icon = "hourglass"
    help = "Park contacts for a duration, until a date attribute, or to a local time of day."
    params_model = DelayParams

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, DelayParams)
        if params.until_field:
            text = f"until {params.until_field} {params.offset_days:+g}d"
        else:
            parts = [f"{v:g}{u}" for v, u in
                     ((params.days, "d"), (params.hours, "h"), (params.minutes, "m")) if v]
            text = "wait " + " ".join(parts) if parts else "wait"
        if params.at_local_time:
            text += f" then {params.at_local_time} local"
        return text


class ConditionCheckParams(Params):
    condition: str = Field("email_opens > 0", min_length=1,
                           description="Condition to wait for (re-checked every tick)")
    timeout_days: float = Field(7, gt=0, le=365, description="Give up after this many days")


@register
class ConditionCheck(NodeType):
    type = "condition_check"
    category = Category.ACTION
    label = "Wait for condition"
    icon = "check-circle"
    help = "Hold contacts until a condition holds (met) or the timeout passes (timeout)."
    params_model = ConditionCheckParams
    every_tick = True
    outputs = Outputs.BRANCHES
    fixed_branches = ("met", "timeout")
    condition_fields = ("condition",)

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, ConditionCheckParams)
        return shorten(f"{params.condition} ≤{params.timeout_days:g}d")


JsonLiteral = bool | int | float | str | None


class DataUpdateParams(Params):
    set: dict[str, JsonLiteral] = Field(
        default_factory=dict, description="Attributes to set, e.g. {\"lead_status\": \"mql\"}"
    )
    increment: dict[str, float] = Field(
        default_factory=lambda: dict[str, float]({"score": 10}),
        description="Numeric attributes to add to, e.g. {\"score\": 10}",
    )

    @field_validator("set", "increment")
    @classmethod
    def _writable(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_attribute_names(value)
        return value

    @model_validator(mode="after")
    def _something(self) -> DataUpdateParams:
        if not self.set and not self.increment:
            raise ValueError("set or increment at least one attribute")
        both = set(self.set) & set(self.increment)
        if both:
            raise ValueError(f"{sorted(both)} both set and incremented")
        return self


@register
class DataUpdate(NodeType):
    type = "data_update"
    category = Category.ACTION
    label = "Update attributes"
    icon = "edit"
    help = "Set attributes or add to numeric ones (e.g. score +10) for everyone passing."
    params_model = DataUpdateParams

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, DataUpdateParams)
        parts = [f"{k}={v}" for k, v in params.set.items()]
        parts += [f"{k}{v:+g}" for k, v in params.increment.items()]
        return shorten(", ".join(parts))


HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class HttpParams(Params):
    """Shared by nodes that call HTTP endpoints."""

    url: str = Field("https://api.example.com/v1/resource", description="Endpoint URL (Liquid)")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="Extra headers (Liquid); never secrets")
    secret: str | None = Field(None, pattern=SECRET_REF, description=SECRET_HELP)
    timeout_seconds: float = Field(10, gt=0, le=120, description="Per-request timeout")
    store: dict[str, str] = Field(
        default_factory=dict,
        description="Attribute -> dotted path in the JSON response, e.g. {\"plan\": \"data.plan\"}",
    )
    connection: str | None = ConnectionName

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://", "{{")):
            raise ValueError("url must start with http:// or https://")
        return value

    @field_validator("store")
    @classmethod
    def _store_names(cls, value: dict[str, str]) -> dict[str, str]:
        check_attribute_names(value)
        return value

    @field_validator("headers")
    @classmethod
    def _no_literal_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if looks_secret(name) and not re.match(SECRET_REF, text.strip()):
                raise ValueError(f"header {name!r} carries a credential: give a reference "
                                 "(env:NAME, file:PATH, connection:ID) or use `secret`, "
                                 "never the value")
        return value


class ApiCallParams(HttpParams):
    method: HttpMethod = Field("POST", description="HTTP method")
    body: str | None = Field(None, description="Request body (Liquid, usually JSON)")
    batch: bool = Field(False, description="One request for the whole cohort instead of each")


@register
class ApiCall(NodeType):
    type = "api_call"
    category = Category.ACTION
    label = "API call"
    icon = "globe"
    help = "Call an HTTP API per contact (or once per batch); response fields may be stored."
    params_model = ApiCallParams
    outbox_channel = "api"
    message = Message.REQUEST
    channel = "http"
    template_fields = ("url", "body", "headers")

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, ApiCallParams)
        return shorten(f"{params.method} {params.url}")
