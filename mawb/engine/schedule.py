"""Trigger schedules: presets and 5-field cron expressions, evaluated in UTC.

Only `next_fire` is needed: the engine asks when a schedule fires next after the trigger
last fired, and the virtual clock asks the same to know when to jump.
"""

from __future__ import annotations

from datetime import datetime, timedelta

EPOCH = datetime(1970, 1, 1)
PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
}
_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _field(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            start, end = (int(v) for v in base.split("-", 1))
        else:
            start = end = int(base)
            if step_text:
                end = high
        if not (low <= start <= end <= high) or step < 1:
            raise ValueError(f"cron field {text!r} outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def parse_cron(expression: str) -> tuple[set[int], ...]:
    """Minute, hour, day-of-month, month, weekday (0 and 7 = Sunday) value sets."""
    expression = PRESETS.get(expression, expression)
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"cron needs 5 fields, got {expression!r}")
    parsed = tuple(_field(f, lo, hi) for f, (lo, hi) in zip(fields, _RANGES, strict=True))
    weekdays = {0 if d == 7 else d for d in parsed[4]}
    return (*parsed[:4], weekdays)


def _day_matches(day: datetime, spec: tuple[set[int], ...], raw: list[str]) -> bool:
    if day.month not in spec[3]:
        return False
    dom_ok = day.day in spec[2]
    dow_ok = (day.isoweekday() % 7) in spec[4]
    dom_any, dow_any = raw[2] == "*", raw[4] == "*"
    if dom_any or dow_any:  # cron: when both are restricted, either may match
        return dom_ok and dow_ok
    return dom_ok or dow_ok


def next_fire(schedule: str, after: datetime | None) -> datetime | None:
    """First firing time strictly after `after`.

    `@once` fires at the first tick (returns EPOCH when it never fired, then None). Other
    schedules return None while `after` is None: the first tick only starts the clock.
    """
    if schedule == "@once":
        return EPOCH if after is None else None
    if after is None:
        return None
    spec = parse_cron(schedule)
    raw = PRESETS.get(schedule, schedule).split()
    start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = start.replace(hour=0, minute=0)
    for offset in range(366 * 5):
        current = day + timedelta(days=offset)
        if not _day_matches(current, spec, raw):
            continue
        for hour in sorted(spec[1]):
            for minute in sorted(spec[0]):
                moment = current.replace(hour=hour, minute=minute)
                if moment >= start:
                    return moment
    return None
