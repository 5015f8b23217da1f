"""When a compiled DAG runs: the flow's tick, a cron override, and the flow's event Asset.

A tick DAG runs on a timer. Flows that enroll contacts on incoming events (a trigger type that
`listens_to_events()`: business events, webhooks) also run as soon as Airflow records an event
on the flow's Asset, so a webhook does not wait up to one tick for its contact to enter. The
Asset only wakes the DAG: the events themselves travel through the ingest spool, which the
run's `ingest` task loads, so a lost or duplicated Asset event changes nothing but the run's time.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mawb.compile import source
from mawb.flowplan import plan

if TYPE_CHECKING:
    from mawb.model import Flow

_TICK_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_TICK = re.compile(r"^(\d+)([mhd])$")
_PRESETS = {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"}
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?#LW-]+$")


class CompileError(ValueError):
    """A valid flow that cannot be compiled with these options; the message says why."""


def schedule_expression(schedule: str) -> str:
    """Python source of a DAG schedule: a tick ("15m") becomes a timedelta, cron stays text.

    >>> schedule_expression("15m")
    'timedelta(minutes=15)'
    """
    tick = _TICK.match(schedule)
    if tick:
        return f"timedelta({_TICK_UNITS[tick.group(2)]}={int(tick.group(1))})"
    fields = schedule.split()
    if schedule in _PRESETS or (len(fields) == 5 and all(map(_CRON_FIELD.match, fields))):
        return source.string(" ".join(fields) if len(fields) == 5 else schedule)
    raise CompileError(
        f"schedule {schedule!r} must be a tick (15m, 1h, 1d), a 5-field cron expression "
        f"or one of {', '.join(sorted(_PRESETS))}"
    )


def has_event_asset(flow: Flow, schedule: str) -> bool:
    """Whether the DAG also runs on its flow's Asset events.

    `@once` keeps its single run: Airflow has no "once or on events" timetable in the SDK.
    """
    return schedule != "@once" and listens_to_events(flow)


def listens_to_events(flow: Flow) -> bool:
    """Whether a trigger of the flow enrolls from arriving events."""
    types = plan(flow).types
    return any(types[node_id].listens_to_events() for node_id in plan(flow).triggers)


def asset_names(flow: Flow) -> tuple[str, str]:
    """(name, uri) of the flow's event Asset; `mawb serve` and deploy/README.md use them."""
    return f"mawb_{flow.id}_events", f"mawb://events/{flow.id}"


def asset_constant(flow: Flow) -> str:
    name, uri = asset_names(flow)
    comment = "# An event on this Asset starts a tick at once (the events come through the spool)."
    line = f"EVENTS = Asset(name={source.string(name)}, uri={source.string(uri)})"
    if len(line) > source.LINE_LENGTH:
        name_code, uri_code = source.long_string(name, 9, 1), source.long_string(uri, 8, 1)
        line = f"EVENTS = Asset(\n    name={name_code},\n    uri={uri_code},\n)"
    return f"{comment}\n{line}"


def dag_schedule(flow: Flow, schedule: str) -> tuple[str, set[str]]:
    """Source of the DAG's `schedule=` value and the `airflow.sdk` names it needs.

    Timetables are spelled out as *trigger* timetables: a tick is a point in time, and its
    run's logical date must be the moment it runs (a bare timedelta would get a data
    interval, whose logical date is one tick earlier).
    """
    expression = schedule_expression(schedule)
    if schedule == "@once":
        return expression, set()
    if expression.startswith("timedelta("):
        timetable, names = f"DeltaTriggerTimetable({expression})", {"DeltaTriggerTimetable"}
    else:
        timezone = source.string(flow.settings.timezone)
        timetable = f"CronTriggerTimetable({expression}, timezone={timezone})"
        names = {"CronTriggerTimetable"}
    if not has_event_asset(flow, schedule):
        return timetable, names
    call = f"AssetOrTimeSchedule(timetable={timetable}, assets=EVENTS)"
    if len(f"    schedule={call},") > source.LINE_LENGTH:
        arguments = f"        timetable={timetable},\n        assets=EVENTS,\n"
        call = f"AssetOrTimeSchedule(\n{arguments}    )"
    return call, names | {"Asset", "AssetOrTimeSchedule"}
