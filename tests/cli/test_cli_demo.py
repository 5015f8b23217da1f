"""`mawb demo`: the workspace `make run` opens, built once, never duplicated.

The in-process tests build a small demo (one template, three virtual days) to check the
rules; one slow test runs the real command as `make run` does and checks what the Monitor
page needs: every template deployed, and funnels, messages and engagement for the
simulated ones.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from cli_helpers import cli, cli_json, count, error_lines, store_rows

import mawb
from mawb.demo import DEMO_FLOWS, build_demo

if TYPE_CHECKING:
    from pathlib import Path


def test_demo_is_built_once_and_rebuilt_identically(tmp_path: Path) -> None:
    home = tmp_path / ".mawb"
    marker = build_demo(home, simulated=("lead_welcome_v1",), days=3)
    assert marker is not None
    assert marker["deployed"] == mawb.template_ids()
    assert marker["simulated"]["lead_welcome_v1"]["messages_sent"] > 0
    first = store_rows(home / "store.duckdb")
    assert len(first["contacts"]) == marker["contacts"] == 3000
    assert len(first["events"]) > marker["events"]  # demo history + simulated behaviour
    assert build_demo(home, simulated=("lead_welcome_v1",), days=3) is None
    assert store_rows(home / "store.duckdb") == first
    assert build_demo(home, rebuild=True, simulated=("lead_welcome_v1",), days=3) is not None
    rebuilt = store_rows(home / "store.duckdb")
    for table, rows in first.items():
        assert rebuilt[table] == rows, f"table {table} differs after a rebuild"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mawb"], "no build folder left"


def test_demo_refuses_a_folder_that_is_not_a_demo(tmp_path: Path) -> None:
    home = tmp_path / "mine"
    home.mkdir()
    (home / "notes.txt").write_text("keep me", encoding="utf-8")
    result = cli("demo", "--home", home, "--rebuild")
    assert result.exit_code == 2
    (line,) = error_lines(result)
    assert line == (f"error: {home}: the folder holds files that are not a mawb demo "
                    "workspace; choose another --home (nothing was changed)")
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_demo_command_builds_what_the_monitor_shows(tmp_path: Path) -> None:
    home = tmp_path / ".mawb"
    started = time.perf_counter()
    result = cli("demo", "--home", home)
    took = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"demo workspace ready in {home}")
    for template_id in mawb.template_ids():
        status = cli_json("status", template_id, "--home", home)
        assert status["versions"] == [1], template_id
        if template_id in DEMO_FLOWS:
            assert status["enrollments"]["total"] > 50, template_id
            assert status["messages"]["email"] > 50, template_id
    store = home / "store.duckdb"
    for template_id in DEMO_FLOWS:
        opens = count(store, "SELECT count(*) FROM events WHERE name = 'email_open' AND "
                             f"source = 'simulation:{template_id}'")
        assert opens > 0, template_id
    messages = count(store, "SELECT count(*) FROM messages")
    again = cli("demo", "--home", home)
    assert again.exit_code == 0
    assert again.stdout.startswith(f"demo workspace already in {home}")
    assert count(store, "SELECT count(*) FROM messages") == messages
    print(f"mawb demo took {took:.1f} s")
