"""The Data page: uploads with a validation report, nothing half-imported, counts, demo data."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from ui_workspace import copy_of_demo

from mawb.ui import data_view
from mawb.ui.reader import WorkspaceReader

PAGE = Path(__file__).resolve().parents[2] / "pages/5_Data.py"
TIMEOUT = 120
BAD_CONTACTS = (b"contact_id,email,engagement_score,timezone\n"
                b"n1,a@example.com,0.5,UTC\n"
                b"n2,b@example.com,1.7,Mars/Base\n"
                b",c@example.com,0.1,UTC\n")
GOOD_CONTACTS = b"contact_id,email,engagement_score\nn1,a@example.com,0.5\nn2,b@example.com,0.9\n"
BAD_EVENTS = (b'{"contact_id": "n1", "name": "page_view", "ts": "2026-11-01T10:00:00Z"}\n'
              b'{"contact_id": "n2", "ts": "yesterday"}\n')


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Path:
    copied = copy_of_demo(tmp_path_factory.getbasetemp(), tmp_path / "home")
    monkeypatch.setenv("MAWB_HOME", str(copied))
    return copied


def counts(home: Path) -> dict[str, int]:
    return data_view.store_overview(WorkspaceReader(home))[0]  # type: ignore[index]


def metrics(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def upload(app: AppTest, kind: str, name: str, content: bytes) -> AppTest:
    app.file_uploader(key=f"data_upload_{kind}").set_value((name, content, "text/plain")).run()
    return app.button(key=f"data_import_{kind}").click().run()


def test_bad_contacts_file_lists_rows_and_columns_and_imports_nothing(home: Path) -> None:
    before = counts(home)
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    assert metrics(app)["Contacts"] == f"{before['contacts']:,}"
    upload(app, "contacts", "bad.csv", BAD_CONTACTS)
    assert not app.exception
    assert "3 problem(s) in bad.csv; nothing was imported" in app.error[0].value
    report = app.dataframe[-1].value
    assert list(zip(report["row"], report["column"], strict=True)) == [
        (2, "engagement_score"), (2, "timezone"), (3, "contact_id")]
    assert counts(home) == before  # row 1 was fine, yet nothing was imported


def test_good_contacts_file_is_imported_and_counted(home: Path) -> None:
    before = counts(home)
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    upload(app, "contacts", "good.csv", GOOD_CONTACTS)
    assert not app.exception
    assert app.success[0].value == "Imported 2 contacts from good.csv."
    assert metrics(app)["Contacts"] == f"{before['contacts'] + 2:,}"
    assert counts(home)["contacts"] == before["contacts"] + 2


def test_bad_events_file_names_the_line(home: Path) -> None:
    before = counts(home)
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    upload(app, "events", "events.jsonl", BAD_EVENTS)
    report = app.dataframe[-1].value
    assert set(report["row"]) == {2} and set(report["column"]) >= {"name"}
    assert counts(home) == before


def test_empty_workspace_offers_the_demo_data(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "empty"
    monkeypatch.setenv("MAWB_HOME", str(home))
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    assert not app.exception
    assert "no contacts yet" in app.info[0].value
    assert not app.metric
    app.button(key="data_load_demo").click().run()
    assert not app.exception
    assert metrics(app)["Contacts"] == "3,000"
    assert int(metrics(app)["Events"].replace(",", "")) > 0


def test_import_waits_for_a_reader_of_the_same_process(home: Path) -> None:
    """A dashboard reading in the same server process delays an import; it does not fail it."""
    before = counts(home)
    reader = WorkspaceReader(home).read()
    reader.__enter__()
    release = threading.Timer(0.8, lambda: reader.__exit__(None, None, None))
    release.start()
    try:
        outcome = data_view.import_file(home, "contacts", "good.csv", GOOD_CONTACTS)
    finally:
        release.join()
    assert outcome.ok, outcome.failure
    assert counts(home)["contacts"] == before["contacts"] + 2
