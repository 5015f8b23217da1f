"""Read and validate contacts and events files before anything else touches them.

Analysts bring contact lists and event histories as CSV, JSON lines, Parquet or a DataFrame. The
store, the simulator and flow conditions all assume typed columns (real booleans for consent,
UTC timestamps, valid IANA timezones), so this module is the single gate in between: it collects
*every* problem in a file (row and column named) and raises one `IntakeError`, or returns a frame in
the normal form described by `CONTACT_COLUMNS` / `EVENT_COLUMNS`. Nothing is half-imported because
the readers return nothing on error. All checks are column-wise (vectorised) so a million-row file
is validated in seconds.

Row numbers in problems are 1-based *data* row numbers: row 1 is the first record after the CSV
header (line 2 of the file), the first line of a JSON-lines file, or the first row of a DataFrame.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

ColumnKind = Literal["id", "text", "float", "int", "bool", "date", "timestamp", "json"]

CONTACT_COLUMNS: dict[str, ColumnKind] = {
    "contact_id": "id",
    "email": "text",
    "phone": "text",
    "first_name": "text",
    "last_name": "text",
    "company": "text",
    "industry": "text",
    "job_title": "text",
    "country": "text",
    "timezone": "text",
    "lifecycle": "text",
    "plan": "text",
    "engagement_score": "float",
    "score": "int",
    "signup_date": "date",
    "trial_end_date": "date",
    "last_purchase_date": "date",
    "last_seen_at": "timestamp",
    "cart_value": "float",
    "launch_date": "date",
    "email_consent": "bool",
    "sms_consent": "bool",
    "push_consent": "bool",
    "unsubscribed": "bool",
    "do_not_contact": "bool",
    "created_at": "timestamp",
}
"""Known contact columns in canonical order, with the kind each is normalised to."""

ENGINE_COLUMNS: dict[str, ColumnKind] = {
    "email_opens": "int",
    "email_clicks": "int",
    "last_open_at": "timestamp",
    "last_click_at": "timestamp",
    "converted": "bool",
    "converted_at": "timestamp",
    "attributes": "json",
}
"""Engine-maintained columns: checked by kind when a file carries them, never added empty."""

MAX_COLUMNS = 1000
MAX_FIELD_LENGTH = 100_000
MAX_HEADER_CHARACTERS = 1_000_000
TYPE_NAMES: dict[str, ColumnKind] = {
    "text": "text", "int": "int", "float": "float", "bool": "bool", "date": "date",
    "timestamp": "timestamp", "json": "json",
}
"""Kinds a user may declare for an unknown column (`--types col=int`)."""

EVENT_COLUMNS: dict[str, ColumnKind] = {
    "event_id": "id",
    "contact_id": "id",
    "name": "text",
    "ts": "timestamp",
    "properties": "json",
}
"""Known event columns in canonical order."""

DTYPES: dict[ColumnKind, str] = {
    "id": "str",
    "text": "str",
    "json": "str",
    "float": "float64",
    "int": "Int64",
    "bool": "bool",
    "date": "datetime64[us]",
    "timestamp": "datetime64[us, UTC]",
}
"""The pandas dtype of each column kind in the normal form (dates are naive midnights)."""

REQUIRED_CONTACT_COLUMNS = ("contact_id",)
REQUIRED_EVENT_COLUMNS = ("contact_id", "name", "ts")

_TRUE_WORDS = frozenset({"true", "1", "yes"})
_FALSE_WORDS = frozenset({"false", "0", "no"})
_MAX_PROBLEMS_PER_CHECK = 1000
_MAX_SHOWN = 20


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file.

    `row` is the 1-based data row number (header not counted) or None for file-level problems;
    `column` is the column concerned or None.
    """

    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class IntakeError(ValueError):
    """Raised once per file with every problem found in it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(self._summary())

    def _summary(self) -> str:
        shown = [str(problem) for problem in self.problems[:_MAX_SHOWN]]
        rest = len(self.problems) - len(shown)
        lines = [f"{len(self.problems)} problem(s) in input:", *(f"  {line}" for line in shown)]
        if rest > 0:
            lines.append(f"  ... and {rest} more")
        return "\n".join(lines)


Source: TypeAlias = "str | Path | pd.DataFrame"


def read_contacts(source: Source, types: dict[str, str] | None = None) -> pd.DataFrame:
    """Read, validate and normalise contacts; raise `IntakeError` listing every problem.

    Known columns missing from the file are added (text/dates/numbers null, flags False: no consent
    is assumed unless the file says so). Unknown columns are kept after the known ones.

    >>> read_contacts(pd.DataFrame({"contact_id": ["c1"], "timezone": ["Europe/Berlin"]})).shape
    (1, 26)
    """
    raw, from_text = _load(source)
    problems = _missing_columns(raw, REQUIRED_CONTACT_COLUMNS)
    schema, type_problems = _declared(types, {**CONTACT_COLUMNS, **ENGINE_COLUMNS})
    problems += type_problems + _long_fields(raw)
    columns, column_problems = _normalise_columns(raw, schema, from_text)
    problems += column_problems
    if "email" in raw.columns:
        problems += _email_problems(columns["email"])
    if "contact_id" in raw.columns:
        problems += _blank_problems(columns["contact_id"], "contact_id", "missing contact_id")
        problems += _duplicate_problems(columns["contact_id"], "contact_id")
    if "timezone" in raw.columns:
        problems += _timezone_problems(columns["timezone"])
    if "engagement_score" in raw.columns:
        problems += _range_problems(columns["engagement_score"], "engagement_score", 0.0, 1.0)
    _raise_if_any(problems)
    frame = _assemble(raw, columns, CONTACT_COLUMNS)
    # Which columns the input really had: an upsert writes only these onto existing contacts,
    # so re-importing a list without `unsubscribed` never re-subscribes anyone.
    frame.attrs["given"] = list(raw.columns)
    return frame


def read_events(source: Source) -> pd.DataFrame:
    """Read, validate and normalise events; raise `IntakeError` listing every problem.

    `event_id` is generated where absent or blank: a deterministic hash of contact_id, name, ts and
    properties, so re-importing the same history yields the same ids (identical rows share one).
    Missing `properties` become `{}`.
    """
    raw, from_text = _load(source)
    problems = _missing_columns(raw, REQUIRED_EVENT_COLUMNS) + _long_fields(raw)
    columns, column_problems = _normalise_columns(raw, EVENT_COLUMNS, from_text)
    problems += column_problems
    if "event_id" in raw.columns:
        # Two rows with one event_id are two different records claiming one identity: which
        # one is right is the sender's call, so the file is refused rather than one dropped.
        problems += _duplicate_problems(columns["event_id"], "event_id")
    for column, message in (
        ("contact_id", "missing contact_id"),
        ("name", "missing event name"),
        ("ts", "missing timestamp"),
    ):
        if column in raw.columns:
            reported = _rows_with_problems(column_problems, column)
            problems += _blank_problems(columns[column], column, message, skip_rows=reported)
    _raise_if_any(problems)
    events = _assemble(raw, columns, EVENT_COLUMNS)
    events["properties"] = events["properties"].fillna("{}")
    missing_id = events["event_id"].isna().to_numpy()
    if missing_id.any():
        generated = event_ids(events.loc[missing_id])
        events.loc[missing_id, "event_id"] = generated
    return events


def event_ids(events: pd.DataFrame) -> np.ndarray:
    """Deterministic ids ("e" + 16 hex digits) from contact_id, name, ts and properties."""
    key = pd.DataFrame(
        {
            "contact_id": events["contact_id"].astype("str"),
            "name": events["name"].astype("str"),
            "ts": events["ts"].dt.as_unit("us").astype("int64"),
            "properties": events["properties"].fillna("{}").astype("str"),
        }
    )
    hashes = pd.util.hash_pandas_object(key, index=False).to_numpy(dtype=np.uint64)
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    nibbles = ((hashes[:, None] >> shifts) & np.uint64(0xF)).astype(np.intp)
    digits = np.frombuffer(b"0123456789abcdef", dtype="S1")[nibbles]
    hex_text = np.ascontiguousarray(digits).view("S16").ravel().astype(str)
    return np.strings.add("e", hex_text)


def _rows_with_problems(problems: list[Problem], column: str) -> set[int]:
    """Rows that already have a problem in `column` (so a bad value is not also called missing)."""
    return {p.row for p in problems if p.column == column and p.row is not None}


# --- loading ----------------------------------------------------------------------------------


def _load(source: Source) -> tuple[pd.DataFrame, bool]:
    """The raw frame with a RangeIndex and str column names; flag True when values are raw text."""
    if isinstance(source, pd.DataFrame):
        frame, from_text = source.copy(), False
    else:
        frame, from_text = _read_file(Path(source))
    _check_header([str(column) for column in frame.columns])
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame.reset_index(drop=True), from_text


def _check_header(names: list[str]) -> None:
    """Column names: at most MAX_COLUMNS, none empty, none twice (compared case-exactly)."""
    if len(names) > MAX_COLUMNS:
        raise IntakeError([Problem(None, None, f"{len(names)} columns; at most {MAX_COLUMNS} "
                                               "are accepted")])
    stripped = [name.strip() for name in names]
    problems = [Problem(None, None, f"column {i} has an empty name")
                for i, name in enumerate(stripped, start=1) if not name]
    counts: dict[str, int] = {}
    for name in stripped:  # the store compares names without case: Email and email clash
        counts[name.lower()] = counts.get(name.lower(), 0) + 1
    problems += [Problem(None, name, "column appears more than once")
                 for name in sorted(n for n, c in counts.items() if c > 1 and n)]
    known = {name.lower(): name for name in (*CONTACT_COLUMNS, *ENGINE_COLUMNS, *EVENT_COLUMNS)}
    problems += [Problem(None, name, f"use the exact name {known[name.lower()]!r}")
                 for name in stripped if name.lower() in known and name != known[name.lower()]]
    if problems:
        raise IntakeError(problems)


def _read_file(path: Path) -> tuple[pd.DataFrame, bool]:
    if not path.is_file():
        raise IntakeError([Problem(None, None, f"file not found: {path}")])
    suffix = "".join(path.suffixes[-2:]).lower()
    try:
        if suffix.endswith((".csv", ".csv.gz")):
            return _read_csv(path), True
        if suffix.endswith((".jsonl", ".ndjson", ".jsonl.gz")):
            return _read_json_lines(path), False
        if suffix.endswith((".parquet", ".pq")):
            return pd.read_parquet(path), False
    except IntakeError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise IntakeError([Problem(None, None, f"cannot read {path.name}: {error}")]) from error
    raise IntakeError(
        [Problem(None, None, f"unsupported file type {path.name!r}: use .csv, .jsonl or .parquet")]
    )


def _read_csv(path: Path) -> pd.DataFrame:
    header = _csv_header(path)
    _check_header(header)  # before pandas allocates anything for a 10,000-column file
    try:
        # Everything is read as text so each value is parsed (and reported) by its column's rule;
        # only empty cells are missing ("NA" or "None" may be someone's name or plan). Header
        # names are taken as read (no `email.1` renaming), and a row with more fields than the
        # header is an error instead of silently shifting its first fields into an index.
        return pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig",
            header=0, names=header, index_col=False,
        )
    except pd.errors.EmptyDataError as error:
        raise IntakeError([Problem(None, None, f"{path.name} is empty")]) from error
    except pd.errors.ParserError as error:
        raise IntakeError([_parser_problem(error, len(header))]) from error


def _csv_header(path: Path) -> list[str]:
    """The header row, read alone with a bounded line length."""
    opener = pd.io.common.get_handle(path, "r", compression="infer", encoding="utf-8-sig")
    with opener as handle:
        line = handle.handle.readline(MAX_HEADER_CHARACTERS + 1)
    if len(line) > MAX_HEADER_CHARACTERS:
        raise IntakeError([Problem(None, None, f"the header line is longer than "
                                               f"{MAX_HEADER_CHARACTERS} characters")])
    if not line.strip():
        raise IntakeError([Problem(None, None, f"{path.name} is empty")])
    return next(csv.reader([line]))


_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _parser_problem(error: Exception, width: int) -> Problem:
    found = _FIELD_COUNT.search(str(error))
    if found:
        row = int(found.group(2)) - 1  # the file's line minus the header
        return Problem(row, None, f"{found.group(3)} fields, but the header has {width} "
                                  "columns (a comma inside a value needs quotes)")
    return Problem(None, None, f"malformed CSV: {str(error).strip()}")


def _read_json_lines(path: Path) -> pd.DataFrame:
    try:
        return pd.read_json(path, lines=True, dtype=False)
    except (ValueError, RecursionError):
        # The fast reader does not say where; scan line by line only on this error path.
        raise IntakeError(_json_line_problems(path)) from None


def _json_line_problems(path: Path) -> list[Problem]:
    problems: list[Problem] = []
    opener = pd.io.common.get_handle(path, "r", compression="infer", encoding="utf-8")
    with opener as handle:
        lines = [line for line in handle.handle if line.strip()]
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(Problem(number, None, f"invalid JSON: {error.msg}"))
            continue
        except RecursionError:
            problems.append(Problem(number, None, "JSON nested too deeply"))
            continue
        if not isinstance(record, dict):
            problems.append(Problem(number, None, "line is not a JSON object"))
    return problems or [Problem(None, None, "cannot read JSON lines file")]


def _missing_columns(raw: pd.DataFrame, required: tuple[str, ...]) -> list[Problem]:
    return [
        Problem(None, column, f"missing required column {column!r}")
        for column in required
        if column not in raw.columns
    ]


# --- per-column normalisation -------------------------------------------------------------------


def _normalise_columns(
    raw: pd.DataFrame, schema: dict[str, ColumnKind], from_text: bool
) -> tuple[dict[str, pd.Series], list[Problem]]:
    """Parse every known column (and date-like extras) to its kind, collecting problems."""
    columns: dict[str, pd.Series] = {}
    problems: list[Problem] = []
    for column in raw.columns:
        kind = schema.get(column) or _kind_by_name(column)
        if kind is None:
            columns[column] = _infer_text_column(raw[column]) if from_text else raw[column]
            continue
        parsed, checks = _PARSERS[kind](raw[column])
        for bad, message in checks:
            problems += _row_problems(bad, column, raw[column], message)
        columns[column] = parsed
    return columns, problems


def _kind_by_name(column: str) -> ColumnKind | None:
    if column.endswith("_date"):
        return "date"
    if column.endswith("_at"):
        return "timestamp"
    return None


Check = tuple[np.ndarray, str]  # rows that failed, message template with {value}
Parsed = tuple[pd.Series, list[Check]]


def _parse_id(values: pd.Series) -> Parsed:
    if ptypes.is_float_dtype(values) and np.all(np.mod(values.dropna(), 1) == 0):
        values = values.astype("Int64")
    return _clean_text(values), []


def _parse_text(values: pd.Series) -> Parsed:
    return _clean_text(values), []


def _clean_text(values: pd.Series) -> pd.Series:
    text = values.astype("str").str.strip()
    return text.mask(text == "")


def _parse_float(values: pd.Series) -> Parsed:
    numbers, bad, message = _parse_number(values)
    return numbers.astype("float64"), [(bad, message)]


def _parse_int(values: pd.Series) -> Parsed:
    numbers, bad, message = _parse_number(values)
    present = numbers.notna().to_numpy()
    fractional = present & (np.mod(numbers.fillna(0), 1) != 0).to_numpy()
    huge = present & (numbers.abs() >= 2.0**63).to_numpy()
    checks = [
        (bad, message),
        (fractional, "not a whole number: {value!r}"),
        (huge & ~fractional, "too large for a whole number: {value!r}"),
    ]
    return numbers.mask(fractional | huge).round().astype("Int64"), checks


def _parse_number(values: pd.Series) -> tuple[pd.Series, np.ndarray, str]:
    if ptypes.is_bool_dtype(values):
        values = values.astype("Int64")
    if ptypes.is_numeric_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        present = values.notna().to_numpy()
    else:
        text = _clean_text(values)
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
        present = text.notna().to_numpy()
    bad = present & ~np.isfinite(numbers.to_numpy(dtype="float64", na_value=np.nan))
    return numbers.mask(bad), bad, "not a finite number: {value!r}"


def _parse_bool(values: pd.Series) -> Parsed:
    message = "not a boolean: {value!r} (use true/false, 1/0 or yes/no)"
    if ptypes.is_bool_dtype(values):
        return values.fillna(False).astype(bool), []
    if ptypes.is_numeric_dtype(values):
        bad = (values.notna() & ~values.isin([0, 1])).to_numpy()
        return (values == 1).fillna(False).astype(bool), [(bad, message)]
    words = _clean_text(values).str.lower()
    is_true = words.isin(_TRUE_WORDS).to_numpy()
    bad = words.notna().to_numpy() & ~is_true & ~words.isin(_FALSE_WORDS).to_numpy()
    # Missing flags are False: consent is never assumed, and nobody is opted out by accident.
    return pd.Series(is_true, index=values.index, dtype=bool), [(bad, message)]


def _parse_timestamp(values: pd.Series) -> Parsed:
    instants, bad = _parse_instants(values)
    return instants, [(bad, "unparseable timestamp {value!r}")]


def _parse_date(values: pd.Series) -> Parsed:
    instants, bad = _parse_instants(values)
    dates = instants.dt.tz_convert(None).dt.floor("D").astype(DTYPES["date"])
    return dates, [(bad, "unparseable date {value!r}")]


def _parse_instants(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """UTC instants: ISO text fast path, other formats retried; naive values are taken as UTC."""
    if ptypes.is_datetime64_any_dtype(values):
        stamps = pd.Series(values)
        if stamps.dt.tz is None:
            stamps = stamps.dt.tz_localize("UTC")
        stamps = stamps.dt.tz_convert("UTC").astype(DTYPES["timestamp"])
        return stamps, np.zeros(len(values), dtype=bool)
    if ptypes.is_numeric_dtype(values) and not ptypes.is_bool_dtype(values):
        # Numbers are Unix seconds (common in JSON event feeds).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stamps = pd.to_datetime(values, unit="s", utc=True, errors="coerce")
        stamps = stamps.astype(DTYPES["timestamp"])
        return stamps, (values.notna() & stamps.isna()).to_numpy()
    text = _clean_text(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stamps = _utc_micros(pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce"))
        retry = (stamps.isna() & text.notna()).to_numpy()
        if retry.any():
            retried = pd.to_datetime(text[retry], format="mixed", utc=True, errors="coerce")
            stamps[retry] = _utc_micros(retried)
        # Mixed JSON columns: real numbers among strings are Unix seconds (digits in text are not).
        numbers = (stamps.isna() & text.notna()).to_numpy() & _is_real_number(values)
        if numbers.any():
            seconds = values[numbers].astype("float64")
            stamps[numbers] = _utc_micros(
                pd.to_datetime(seconds, unit="s", utc=True, errors="coerce")
            )
    return stamps, (text.notna() & stamps.isna()).to_numpy()


def _utc_micros(stamps: pd.Series) -> pd.Series:
    return pd.Series(stamps).astype(DTYPES["timestamp"])


def _is_real_number(values: pd.Series) -> np.ndarray:
    if values.dtype != object:
        return np.zeros(len(values), dtype=bool)
    kinds = values.map(lambda value: isinstance(value, int | float) and not isinstance(value, bool))
    return kinds.to_numpy(dtype=bool)


def _parse_json(values: pd.Series) -> Parsed:
    """JSON object text; dict values (JSON lines, DataFrames) are serialised."""
    message = "properties is not a JSON object: {value!r}"
    present = values.notna().to_numpy()
    # Parse each distinct value once: event feeds repeat the same few property objects.
    keys = values.astype(object).map(_json_key)
    as_text = {key: _json_object_text(key) for key in pd.unique(keys[present])}
    text = keys.map(as_text).astype("str")
    bad = present & text.isna().to_numpy()
    return text, [(bad, message)]


def _json_key(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return value


def _json_object_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text == "":
        return "{}"
    try:
        parsed = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    return text if isinstance(parsed, dict) else None


_PARSERS = {
    "id": _parse_id,
    "text": _parse_text,
    "json": _parse_json,
    "float": _parse_float,
    "int": _parse_int,
    "bool": _parse_bool,
    "date": _parse_date,
    "timestamp": _parse_timestamp,
}


_WHOLE = re.compile(r"^-?(0|[1-9]\d{0,17})$")
_DECIMAL = re.compile(r"^-?(0|[1-9]\d*)\.\d+$")


def _infer_text_column(values: pd.Series) -> pd.Series:
    """Unknown CSV columns: numbers become numbers only when every value reads back exactly
    (no leading zeros or `+`, at most 15 significant digits, whole numbers within BIGINT), so
    `+15551234567`, `01234` and 23-digit ids stay text; true/false become booleans; else text.
    Declare a type (`types`) to decide otherwise."""
    text = _clean_text(values)
    present = text.notna()
    if not present.any():
        return text
    given = text[present]
    if given.str.fullmatch(_WHOLE).all():
        return pd.to_numeric(text, errors="coerce").astype("Int64")
    decimals = given.str.fullmatch(_DECIMAL) | given.str.fullmatch(_WHOLE)
    if decimals.all() and (given.str.count(r"\d") <= 15).all():
        return pd.to_numeric(text, errors="coerce")
    words = text.str.lower()
    if words[present].isin({"true", "false"}).all():
        return words.map({"true": True, "false": False}).astype("boolean")
    return text


# --- row checks ----------------------------------------------------------------------------------

_NOT_IN_ADDRESS = r"@\s,;<>()\[\]\\\"\x00-\x1f\x7f"
_EMAIL = re.compile(rf"^[^{_NOT_IN_ADDRESS}]+@[^{_NOT_IN_ADDRESS}.][^{_NOT_IN_ADDRESS}]*"
                    rf"\.[^{_NOT_IN_ADDRESS}.]+$")


def _email_problems(emails: pd.Series) -> list[Problem]:
    """One address per cell: no commas, spaces, newlines or NUL (a header injection or a
    second recipient), a local part, `@` and a dotted domain."""
    present = emails.notna()
    bad = (present & ~emails.fillna("").str.fullmatch(_EMAIL)).to_numpy()
    return _row_problems(bad, "email", emails.map(repr), "not one email address: {value}")


def _long_fields(raw: pd.DataFrame) -> list[Problem]:
    """Cells longer than MAX_FIELD_LENGTH characters (one per column, naming the first row)."""
    problems = []
    for column in raw.columns:
        values = raw[column]
        if not (values.dtype == object or ptypes.is_string_dtype(values)):
            continue
        try:  # vectorised: a Python call per cell dominated imports of 100k contacts
            lengths = values.str.len().fillna(0)
        except AttributeError:  # an object column holding no text at all
            continue
        too_long = np.flatnonzero(lengths.to_numpy() > MAX_FIELD_LENGTH)
        if len(too_long):
            problems.append(Problem(int(too_long[0]) + 1, str(column),
                                    f"value longer than {MAX_FIELD_LENGTH} characters "
                                    f"({len(too_long)} row(s))"))
    return problems


def _declared(
    types: dict[str, str] | None, schema: dict[str, ColumnKind]
) -> tuple[dict[str, ColumnKind], list[Problem]]:
    """The known schema plus the kinds a user declared for other columns."""
    merged = dict(schema)
    problems = []
    for column, name in (types or {}).items():
        kind = TYPE_NAMES.get(name.strip().lower())
        if kind is None:
            problems.append(Problem(None, column, f"unknown type {name!r}; use one of "
                                                  f"{', '.join(TYPE_NAMES)}"))
        elif column in schema and schema[column] != kind:
            problems.append(Problem(None, column, f"{column} is always {schema[column]}; "
                                                  "its type cannot be declared"))
        else:
            merged[column] = kind
    return merged, problems


def _row_problems(bad: np.ndarray, column: str, values: pd.Series, message: str) -> list[Problem]:
    """One problem per bad row (at most `_MAX_PROBLEMS_PER_CHECK`, then one summary)."""
    positions = np.flatnonzero(bad)
    shown = positions[:_MAX_PROBLEMS_PER_CHECK]
    problems = [
        Problem(int(p) + 1, column, message.format(value=_shorten(values.iloc[p]))) for p in shown
    ]
    if len(positions) > len(shown):
        rest = len(positions) - len(shown)
        problems.append(Problem(None, column, f"{rest} more rows with the same kind of problem"))
    return problems


def _shorten(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _blank_problems(
    values: pd.Series, column: str, message: str, skip_rows: set[int] | None = None
) -> list[Problem]:
    bad = values.isna().to_numpy().copy()
    for row in skip_rows or ():
        bad[row - 1] = False
    return _row_problems(bad, column, values, message)


def _duplicate_problems(ids: pd.Series, column: str) -> list[Problem]:
    """Name both rows: every repeat points at the row where the id first appears."""
    later = (ids.duplicated(keep="first") & ids.notna()).to_numpy()
    if not later.any():
        return []
    first_row = pd.Series(np.arange(1, len(ids) + 1)).groupby(ids.to_numpy()).transform("min")
    positions = np.flatnonzero(later)[:_MAX_PROBLEMS_PER_CHECK]
    problems = [
        Problem(
            int(p) + 1,
            column,
            f"duplicate {column} {ids.iloc[p]!r} (first in row {int(first_row.iloc[p])})",
        )
        for p in positions
    ]
    rest = int(later.sum()) - len(positions)
    if rest > 0:
        problems.append(Problem(None, column, f"{rest} more duplicate {column} values"))
    return problems


@lru_cache(maxsize=1)
def _known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def _timezone_problems(zones: pd.Series) -> list[Problem]:
    bad = (zones.notna() & ~zones.isin(_known_timezones())).to_numpy()
    return _row_problems(bad, "timezone", zones, "unknown timezone {value!r}")


def _range_problems(numbers: pd.Series, column: str, low: float, high: float) -> list[Problem]:
    bad = (numbers.notna() & ((numbers < low) | (numbers > high))).to_numpy()
    return _row_problems(bad, column, numbers, f"{column} {{value}} is outside {low:g}..{high:g}")


def _raise_if_any(problems: list[Problem]) -> None:
    if problems:
        ordered = sorted(problems, key=lambda p: (p.row is not None, p.row or 0, p.column or ""))
        raise IntakeError(ordered)


# --- assembly ------------------------------------------------------------------------------------


def _assemble(
    raw: pd.DataFrame, columns: dict[str, pd.Series], schema: dict[str, ColumnKind]
) -> pd.DataFrame:
    """Known columns in canonical order (absent ones added empty), then extras as they came."""
    data: dict[str, pd.Series | np.ndarray] = {}
    for column, kind in schema.items():
        if column in columns:
            data[column] = columns[column].astype(DTYPES[kind])
        else:
            data[column] = _empty_column(kind, len(raw))
    for column in raw.columns:
        if column not in schema:
            data[column] = columns[column]
    return pd.DataFrame(data, index=pd.RangeIndex(len(raw)))


def _empty_column(kind: ColumnKind, length: int) -> pd.Series:
    if kind == "bool":
        return pd.Series(np.zeros(length, dtype=bool))
    return pd.Series([None] * length, dtype=DTYPES[kind])
