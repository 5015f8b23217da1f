"""Contacts/events intake: every bad case is reported with its row and column, good files load."""

from __future__ import annotations

import json
from datetime import UTC
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mawb import data, intake
from mawb.intake import IntakeError, Problem

if TYPE_CHECKING:
    from pathlib import Path

CONTACTS_CSV = """\
contact_id,email,timezone,engagement_score,score,signup_date,last_seen_at,email_consent,plan
c1,a@x.example,Europe/Berlin,0.5,40,2026-10-01,2026-10-30T10:00:00Z,true,pro
c2,b@x.example,America/New_York,0.25,12,,2026-10-29 08:00:00+02:00,no,none
c3,c@x.example,,0.9,90,2026-09-30,2026-10-31T00:00:00,1,trial
"""

EVENTS_CSV = """\
contact_id,name,ts,properties
c1,page_view,2026-10-30T10:00:00Z,"{""url"": ""/pricing""}"
c2,form_submission,2026-10-30T11:00:00Z,"{""form"": ""demo_request""}"
c1,email_open,2026-10-30T12:00:00Z,
"""


def write(tmp_path: Path, text: str, name: str = "input.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def with_cell(text: str, row: int, column: str, value: str) -> str:
    """The CSV text with one cell (1-based data row) replaced."""
    lines = text.splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",", len(header) - 1)
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    return "\n".join(lines) + "\n"


def problems_of(source: object, reader=intake.read_contacts) -> list[Problem]:
    with pytest.raises(IntakeError) as caught:
        reader(source)
    return caught.value.problems


# --- accepting and normalising ----------------------------------------------------------------


def test_small_contacts_file_is_normalised(tmp_path: Path) -> None:
    contacts = intake.read_contacts(write(tmp_path, CONTACTS_CSV))
    assert list(contacts.columns) == list(intake.CONTACT_COLUMNS)
    assert contacts["contact_id"].tolist() == ["c1", "c2", "c3"]
    assert contacts["email_consent"].tolist() == [True, False, True]
    assert contacts["sms_consent"].dtype == bool and not contacts["sms_consent"].any()
    assert str(contacts["last_seen_at"].dtype) == "datetime64[us, UTC]"
    assert contacts["last_seen_at"].tolist() == [
        pd.Timestamp("2026-10-30T10:00:00Z"),
        pd.Timestamp("2026-10-29T06:00:00Z"),  # +02:00 converted to UTC
        pd.Timestamp("2026-10-31T00:00:00Z"),  # naive taken as UTC
    ]
    assert contacts["signup_date"].tolist()[0] == pd.Timestamp("2026-10-01")
    assert pd.isna(contacts["signup_date"].iloc[1])
    assert contacts["score"].dtype == "Int64"
    assert pd.isna(contacts["timezone"].iloc[2])


def test_boolean_spellings(tmp_path: Path) -> None:
    spellings = ["TRUE", "False", "yes", "No", "1", "0", " true ", ""]
    frame = pd.DataFrame({"contact_id": [f"c{i}" for i in range(8)], "unsubscribed": spellings})
    contacts = intake.read_contacts(frame)
    assert contacts["unsubscribed"].tolist() == [True, False, True, False, True, False, True, False]


def test_typed_dataframe_values_are_accepted() -> None:
    frame = pd.DataFrame(
        {
            "contact_id": [1, 2],
            "email_consent": [True, False],
            "sms_consent": [1.0, 0.0],
            "score": [10.0, np.nan],
            "created_at": pd.to_datetime(["2026-01-01 10:00", "2026-01-02 11:00"]),
            "last_seen_at": pd.to_datetime(["2026-01-03 10:00+01:00", "2026-01-03 10:00+01:00"]),
            "signup_date": [pd.Timestamp("2026-01-05").date(), None],
        }
    )
    before = frame.copy()
    contacts = intake.read_contacts(frame)
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is not touched
    assert contacts["contact_id"].tolist() == ["1", "2"]
    assert contacts["sms_consent"].tolist() == [True, False]
    assert contacts["score"].tolist()[0] == 10 and pd.isna(contacts["score"].iloc[1])
    assert contacts["created_at"].iloc[0] == pd.Timestamp("2026-01-01T10:00Z")
    assert contacts["last_seen_at"].iloc[0] == pd.Timestamp("2026-01-03T09:00Z")
    assert contacts["signup_date"].iloc[0] == pd.Timestamp("2026-01-05")


def test_unknown_columns_are_kept_and_typed_from_csv(tmp_path: Path) -> None:
    text = "contact_id,ltv,vip,note,renewal_date\nc1,120.5,true,hello,2026-12-01\nc2,80,false,,\n"
    contacts = intake.read_contacts(write(tmp_path, text))
    assert list(contacts.columns[-4:]) == ["ltv", "vip", "note", "renewal_date"]
    assert contacts["ltv"].tolist() == [120.5, 80.0]
    assert contacts["vip"].tolist() == [True, False]
    assert contacts["note"].iloc[0] == "hello" and pd.isna(contacts["note"].iloc[1])
    assert contacts["renewal_date"].iloc[0] == pd.Timestamp("2026-12-01")


def test_events_get_deterministic_ids_and_empty_properties(tmp_path: Path) -> None:
    events = intake.read_events(write(tmp_path, EVENTS_CSV))
    assert list(events.columns) == list(intake.EVENT_COLUMNS)
    assert events["event_id"].str.fullmatch(r"e[0-9a-f]{16}").all()
    assert events["event_id"].is_unique
    assert events["properties"].iloc[2] == "{}"
    again = intake.read_events(write(tmp_path, EVENTS_CSV, "again.csv"))
    assert events["event_id"].tolist() == again["event_id"].tolist()
    changed = intake.read_events(write(tmp_path, with_cell(EVENTS_CSV, 1, "name", "email_open")))
    assert changed["event_id"].iloc[0] != events["event_id"].iloc[0]
    assert changed["event_id"].iloc[1:].tolist() == events["event_id"].iloc[1:].tolist()


def test_given_event_ids_are_kept_and_blank_ones_generated(tmp_path: Path) -> None:
    text = (
        "event_id,contact_id,name,ts\nmine-1,c1,page_view,2026-10-30T10:00:00Z\n,c1,x,2026-10-30\n"
    )
    events = intake.read_events(write(tmp_path, text))
    assert events["event_id"].iloc[0] == "mine-1"
    assert events["event_id"].iloc[1].startswith("e")
    assert events["ts"].iloc[1] == pd.Timestamp("2026-10-30T00:00:00Z")


def test_json_lines_events_with_object_properties(tmp_path: Path) -> None:
    lines = [
        {"contact_id": "c1", "name": "purchase", "ts": 1793577600, "properties": {"amount": 49.0}},
        {"contact_id": "c2", "name": "page_view", "ts": "2026-11-01T00:00:00Z"},
    ]
    path = write(tmp_path, "\n".join(json.dumps(line) for line in lines) + "\n", "events.jsonl")
    events = intake.read_events(path)
    assert json.loads(events["properties"].iloc[0]) == {"amount": 49.0}
    assert events["properties"].iloc[1] == "{}"
    assert events["ts"].iloc[0] == pd.Timestamp("2026-11-02T00:00:00Z")  # Unix seconds


# --- round trips --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> tuple[pd.DataFrame, pd.DataFrame]:
    contacts = data.synthetic_contacts(400, seed=5)
    return contacts, data.synthetic_events(contacts, seed=5)


def test_csv_round_trip(tmp_path: Path, synthetic: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    contacts, events = synthetic
    pd.testing.assert_frame_equal(
        intake.read_contacts(data.write_csv(contacts, tmp_path / "c.csv")), contacts
    )
    pd.testing.assert_frame_equal(
        intake.read_events(data.write_csv(events, tmp_path / "e.csv")), events
    )


def test_parquet_and_json_lines_round_trip(
    tmp_path: Path, synthetic: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    contacts, events = synthetic
    contacts.to_parquet(tmp_path / "c.parquet")
    pd.testing.assert_frame_equal(intake.read_contacts(tmp_path / "c.parquet"), contacts)
    events.to_json(tmp_path / "e.jsonl", orient="records", lines=True, date_format="iso")
    pd.testing.assert_frame_equal(intake.read_events(tmp_path / "e.jsonl"), events)


def test_fractional_timestamps_survive_csv(tmp_path: Path) -> None:
    frame = intake.read_contacts(
        pd.DataFrame({"contact_id": ["a"], "created_at": ["2026-01-01T00:00:00.250000Z"]})
    )
    again = intake.read_contacts(data.write_csv(frame, tmp_path / "f.csv"))
    assert again["created_at"].iloc[0] == pd.Timestamp("2026-01-01T00:00:00.25Z")


# --- rejecting ------------------------------------------------------------------------------------


def test_missing_required_columns(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, "email\na@x.example\n"))
    assert Problem(None, "contact_id", "missing required column 'contact_id'") in problems
    problems = problems_of(write(tmp_path, "contact_id\nc1\n"), intake.read_events)
    assert {p.column for p in problems} == {"name", "ts"}
    assert all(p.row is None for p in problems)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("contact_id", "", "missing contact_id"),
        ("timezone", "Mars/Base", "unknown timezone 'Mars/Base'"),
        ("signup_date", "31st of Smarch", "unparseable date '31st of Smarch'"),
        ("last_seen_at", "yesterday-ish", "unparseable timestamp 'yesterday-ish'"),
        ("email_consent", "maybe", "not a boolean: 'maybe'"),
        ("score", "lots", "not a finite number: 'lots'"),
        ("score", "12.5", "not a whole number: '12.5'"),
        ("engagement_score", "1.5", "engagement_score 1.5 is outside 0..1"),
        ("engagement_score", "-0.1", "engagement_score -0.1 is outside 0..1"),
        ("engagement_score", "inf", "not a finite number: 'inf'"),
    ],
)
def test_each_bad_contact_cell_is_named(
    tmp_path: Path, column: str, value: str, message: str
) -> None:
    problems = problems_of(write(tmp_path, with_cell(CONTACTS_CSV, 2, column, value)))
    assert len(problems) == 1, problems
    assert (problems[0].row, problems[0].column) == (2, column)
    assert message in problems[0].message


def test_bad_values_in_date_like_extra_columns(tmp_path: Path) -> None:
    text = "contact_id,renewal_date,churned_at,notes\nc1,2026-13-45,2026-01-01,x\nc2,,soon,y\n"
    problems = problems_of(write(tmp_path, text))
    assert [(p.row, p.column) for p in problems] == [(1, "renewal_date"), (2, "churned_at")]


def test_cart_value_must_be_numeric(tmp_path: Path) -> None:
    frame = pd.DataFrame({"contact_id": ["a", "b"], "cart_value": ["12.50", "twelve"]})
    problems = problems_of(frame)
    assert problems == [Problem(2, "cart_value", "not a finite number: 'twelve'")]


def test_duplicate_ids_name_both_rows(tmp_path: Path) -> None:
    text = with_cell(CONTACTS_CSV, 3, "contact_id", "c1")
    problems = problems_of(write(tmp_path, text))
    assert problems == [Problem(3, "contact_id", "duplicate contact_id 'c1' (first in row 1)")]


def test_every_problem_is_collected_and_sorted(tmp_path: Path) -> None:
    text = with_cell(CONTACTS_CSV, 3, "timezone", "Nowhere/Town")
    text = with_cell(text, 1, "email_consent", "perhaps")
    text = with_cell(text, 2, "signup_date", "never")
    problems = problems_of(write(tmp_path, text))
    assert [(p.row, p.column) for p in problems] == [
        (1, "email_consent"),
        (2, "signup_date"),
        (3, "timezone"),
    ]


def test_error_message_lists_twenty_and_counts_the_rest() -> None:
    ids = [f"c{i}" for i in range(30)]
    frame = pd.DataFrame({"contact_id": ids, "timezone": ["Mars/Base"] * 30})
    with pytest.raises(IntakeError) as caught:
        intake.read_contacts(frame)
    message = str(caught.value)
    assert "row 12, column timezone: unknown timezone 'Mars/Base'" in message
    assert "row 20, column timezone" in message
    assert "row 21, column timezone" not in message
    assert "... and 10 more" in message
    assert len(caught.value.problems) == 30


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("properties", '"[1, 2]"', "properties is not a JSON object: '[1, 2]'"),
        ("properties", "not json", "properties is not a JSON object: 'not json'"),
        ("properties", "42", "properties is not a JSON object: '42'"),
        ("name", "", "missing event name"),
        ("contact_id", "", "missing contact_id"),
        ("ts", "", "missing timestamp"),
        ("ts", "half past", "unparseable timestamp 'half past'"),
    ],
)
def test_each_bad_event_cell_is_named(
    tmp_path: Path, column: str, value: str, message: str
) -> None:
    text = with_cell(EVENTS_CSV, 2, column, value)
    problems = problems_of(write(tmp_path, text), intake.read_events)
    assert problems == [Problem(2, column, message)]


def test_unreadable_inputs_raise_intake_error(tmp_path: Path) -> None:
    assert "file not found" in problems_of(tmp_path / "nope.csv")[0].message
    assert "unsupported file type" in problems_of(write(tmp_path, "x", "c.xlsx"))[0].message
    assert "is empty" in problems_of(write(tmp_path, "", "empty.csv"))[0].message
    bad_lines = '{"contact_id": "a", "name": "x", "ts": "2026-01-01"}\n{oops\n[1]\n'
    problems = problems_of(write(tmp_path, bad_lines, "e.jsonl"), intake.read_events)
    assert [p.row for p in problems] == [2, 3]
    duplicated = pd.DataFrame([[1, 2]], columns=["contact_id", "contact_id"])
    assert problems_of(duplicated) == [Problem(None, "contact_id", "column appears more than once")]


def test_many_bad_rows_are_summarised_not_listed_forever() -> None:
    frame = pd.DataFrame({"contact_id": np.arange(5000).astype(str), "score": ["x"] * 5000})
    problems = problems_of(frame)
    assert len(problems) == 1001
    assert problems[0].row is None and "4000 more rows" in problems[0].message


# --- robustness ----------------------------------------------------------------------------------

cell = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.datetimes(timezones=st.none() | st.just(UTC)),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
    st.sampled_from(["yes", "no", "2026-11-02", "Europe/Berlin", "{}", "[1]", '{"a": 1}', " "]),
)
columns = st.lists(
    st.sampled_from([*intake.CONTACT_COLUMNS, *intake.EVENT_COLUMNS, "extra", "x_date", "y_at"]),
    min_size=1,
    max_size=6,
    unique=True,
)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    names = draw(columns)
    rows = draw(st.integers(min_value=0, max_value=5))
    return pd.DataFrame(
        {name: pd.Series([draw(cell) for _ in range(rows)], dtype=object) for name in names}
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames())
def test_random_frames_only_ever_raise_intake_error(frame: pd.DataFrame) -> None:
    for reader in (intake.read_contacts, intake.read_events):
        try:
            result = reader(frame)
        except IntakeError as error:
            assert error.problems
        else:
            assert len(result) == len(frame)
