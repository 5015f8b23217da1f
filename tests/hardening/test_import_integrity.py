"""Issue item 3: imports never lose or change data silently.

Text stays text unless every value reads back exactly (or the user declares the type); a row
with more fields than the header is a row problem; a partitioned import is all or nothing;
duplicate event ids in one file are refused and a re-ingest says nothing new was loaded; a
re-import never resets columns the file lacks (consent above all); a list without consent
columns says plainly that nothing will be emailed, and `--consent email` records consent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pytest
from hardening_helpers import cli

from mawb.engine import Workspace
from mawb.intake import IntakeError, read_contacts, read_events

if TYPE_CHECKING:
    from pathlib import Path


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


KEPT_AS_TEXT = {
    "mobile": ["+15551234567", "+15550000000"],
    "zip": ["01234", "99501"],
    "customer_no": ["000123", "000124"],
    "long_id": ["12345678901234567890123", "12345678901234567890124"],
    "phone_like": ["555-1234", "555-9876"],
    "mixed": ["12", "12a"],
    "precise": ["0.1234567890123456789", "1.5"],
}


@pytest.mark.parametrize("column", list(KEPT_AS_TEXT))
def test_text_that_only_looks_numeric_stays_text(column: str, tmp_path: Path) -> None:
    values = KEPT_AS_TEXT[column]
    path = write(tmp_path, "c.csv", f"contact_id,{column}\nc1,{values[0]}\nc2,{values[1]}\n")
    assert read_contacts(path)[column].tolist() == values


def test_numbers_that_read_back_exactly_become_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "contact_id,visits,ratio\nc1,3,0.5\nc2,-12,2.25\n")
    frame = read_contacts(path)
    assert frame["visits"].tolist() == [3, -12] and str(frame["visits"].dtype) == "Int64"
    assert frame["ratio"].tolist() == [0.5, 2.25]


def test_a_declared_type_wins(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "contact_id,zip,visits\nc1,01234,7\nc2,99501,8\n")
    frame = read_contacts(path, {"zip": "int", "visits": "text"})
    assert frame["zip"].tolist() == [1234, 99501]
    assert frame["visits"].tolist() == ["7", "8"]
    with pytest.raises(IntakeError, match="unknown type 'number'"):
        read_contacts(path, {"zip": "number"})


def test_a_later_text_value_into_an_earlier_numeric_column_is_a_clean_error(
    tmp_path: Path,
) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.import_contacts(write(tmp_path, "a.csv", "contact_id,visits\nc1,3\n"))
    with pytest.raises(IntakeError, match="does not fit the store's column type"):
        ws.import_contacts(write(tmp_path, "b.csv", "contact_id,visits\nc2,many\n"))
    with ws.connection(read_only=True) as connection:
        assert connection.execute("SELECT contact_id FROM contacts").fetchall() == [("c1",)]


def test_a_row_with_more_fields_than_the_header_is_a_row_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "contact_id,email\nc1,a@x.io\nc2,b@x.io\nc3,a@x.io,extra,"
                                    "fields\n")
    with pytest.raises(IntakeError) as caught:
        read_contacts(path)
    (problem,) = caught.value.problems
    assert problem.row == 3 and "4 fields, but the header has 2 columns" in problem.message


def test_a_partitioned_import_is_all_or_nothing(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws", partitions=2)
    ws.import_contacts(write(tmp_path, "a.csv", "contact_id,visits\nc1,3\nc2,4\nc3,5\nc4,6\n"))
    with pytest.raises(IntakeError):
        # p-rows spread over both partitions; one value cannot be stored in `visits`
        ws.import_contacts(write(tmp_path, "b.csv", "contact_id,visits\n" + "".join(
            f"p{i},{i}\n" for i in range(20)) + "p99,lots\n"))
    for partition in range(2):
        with ws.connection(partition, read_only=True) as connection:
            ids = {row[0] for row in connection.execute("SELECT contact_id FROM contacts")
                   .fetchall()}
            assert not any(cid.startswith("p") for cid in ids), (partition, ids)


def test_a_partitions_option_that_disagrees_with_the_workspace_is_refused(
    tmp_path: Path,
) -> None:
    home = tmp_path / "ws"
    csv = write(tmp_path, "a.csv", "contact_id,email_consent\nc3,true\n")
    assert cli("import-contacts", csv, "--home", home).exit_code == 0
    result = cli("import-contacts", csv, "--home", home, "--partitions", 2)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (home / "partitions").exists()
    result = cli("run", "lead_welcome_v1", "--once", "--home", home, "--partitions", 3)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (home / "partitions").exists()  # nothing stray after "nothing changed"


def test_duplicate_event_ids_in_one_file_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "e.csv", "event_id,contact_id,name,ts\n"
                                    "e1,c1,page_view,2026-11-01T10:00:00Z\n"
                                    "e1,c2,purchase,2026-11-01T11:00:00Z\n")
    with pytest.raises(IntakeError, match=r"duplicate event_id 'e1' \(first in row 1\)"):
        read_events(path)


def test_a_reingest_reports_nothing_new(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    path = write(tmp_path, "e.csv", "event_id,contact_id,name,ts\n"
                                    "e1,c1,page_view,2026-11-01T10:00:00Z\n"
                                    "e2,c2,page_view,2026-11-01T11:00:00Z\n")
    assert cli("ingest", path, "--home", home).stdout.strip() == (
        f"{path}: 2 new events (0 already loaded)")
    assert cli("ingest", path, "--home", home).stdout.strip() == (
        f"{path}: 0 new events (2 already loaded)")


def test_a_reimport_without_consent_columns_resets_nothing(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.import_contacts(pd.DataFrame({"contact_id": ["c1"], "email": ["a@x.io"],
                                     "email_consent": [True], "unsubscribed": [True],
                                     "score": [40]}))
    ws.import_contacts(pd.DataFrame({"contact_id": ["c1"], "first_name": ["Ada"]}))
    with ws.connection(read_only=True) as connection:
        assert connection.execute(
            "SELECT email, email_consent, unsubscribed, score, first_name FROM contacts"
        ).fetchall() == [("a@x.io", True, True, 40, "Ada")]


def test_contacts_without_a_consent_column_get_a_plain_warning(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    path = write(tmp_path, "c.csv", "contact_id,email\n" + "".join(
        f"c{i},c{i}@example.com\n" for i in range(10)))
    result = cli("import-contacts", path, "--home", home)
    assert result.exit_code == 0
    assert result.stdout.strip() == f"{path}: 10 contacts imported"
    assert result.stderr.startswith(
        "warning: no email_consent column: 10 contacts have no email consent; nothing will be "
        "sent to them by email")


def test_consent_option_records_consent_for_the_list(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    path = write(tmp_path, "c.csv", "contact_id,email,phone\nc1,a@x.io,+15551234567\n")
    result = cli("import-contacts", path, "--home", home, "--consent", "email,sms")
    assert result.exit_code == 0 and "warning" not in result.stderr
    ws = Workspace(home)
    with ws.connection(read_only=True) as connection:
        assert connection.execute("SELECT email_consent, sms_consent, push_consent, phone "
                                  "FROM contacts").fetchall() == [(True, True, False,
                                                                   "+15551234567")]
    result = cli("import-contacts", path, "--home", home, "--consent", "fax")
    assert result.exit_code == 2 and result.stderr.startswith("error:")
