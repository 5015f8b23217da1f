"""The committed demo set: it equals a fresh regeneration and loads through intake."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd

from mawb import data

REPO = Path(__file__).resolve().parents[2]


def test_committed_files_equal_a_fresh_regeneration(tmp_path: Path) -> None:
    fresh_contacts, fresh_events = data.write_demo(tmp_path)
    for fresh in (fresh_contacts, fresh_events):
        committed = REPO / "data" / fresh.name
        assert committed.read_bytes() == fresh.read_bytes(), (
            f"data/{fresh.name} drifted from the generator: run `python -m mawb.data --out data`"
        )


def test_demo_files_stay_small() -> None:
    for name in ("contacts.csv", "events.csv"):
        assert (REPO / "data" / name).stat().st_size < 2_000_000


def test_demo_frames_load_through_intake() -> None:
    contacts, events = data.demo_contacts(), data.demo_events()
    assert len(contacts) == data.DEMO_CONTACTS
    assert contacts["contact_id"].is_unique
    assert events["contact_id"].isin(contacts["contact_id"]).all()
    epoch = pd.Timestamp(data.DEMO_EPOCH)
    assert events["ts"].between(epoch - timedelta(days=21), epoch).all()
    pd.testing.assert_frame_equal(
        contacts, data.synthetic_contacts(data.DEMO_CONTACTS, seed=data.DEMO_SEED)
    )


def test_demo_frames_are_copies() -> None:
    contacts = data.demo_contacts()
    contacts.loc[0, "first_name"] = "Changed"
    del contacts["email"]
    again = data.demo_contacts()
    assert again.loc[0, "first_name"] != "Changed"
    assert "email" in again.columns


def test_module_command_writes_the_demo_set(tmp_path: Path, capsys) -> None:
    data._main(["--out", str(tmp_path)])
    assert "contacts.csv" in capsys.readouterr().out
    assert (tmp_path / "contacts.csv").read_bytes() == (REPO / "data" / "contacts.csv").read_bytes()
