"""The spool writer: whole files under final names only, group commit, failures reported."""

from __future__ import annotations

import json
import re
import threading

import pytest

from mawb.service.spool import SpoolWriter, spool_depth, write_batch

NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}\.jsonl$")


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_write_batch_leaves_one_whole_file_and_no_tmp(tmp_path):
    records = [{"kind": "event", "event_id": f"e{i}", "name": "é ✓"} for i in range(3)]
    names = [write_batch(tmp_path, records[:2]), write_batch(tmp_path, records[2:])]
    assert all(NAME.match(name) for name in names)
    assert names == sorted(names)  # names sort by arrival
    assert [lines(tmp_path / n) for n in names] == [records[:2], records[2:]]
    assert list((tmp_path / ".tmp").iterdir()) == []
    assert spool_depth(tmp_path) == 2


def test_a_record_is_one_line_whatever_unicode_line_breaks_it_holds(tmp_path):
    records = [{"kind": "event", "properties": {"text": "a\u2028b\u2029c\x85d\re\nf"}},
               {"kind": "event", "properties": {}}]
    name = write_batch(tmp_path, records)
    text = (tmp_path / name).read_text()
    assert len(text.splitlines()) == 2  # what the loader splits on
    assert [json.loads(line) for line in text.splitlines()] == records


def test_concurrent_submissions_share_flushes(tmp_path):
    flushed: list[int] = []
    writer = SpoolWriter(tmp_path, on_flush=lambda records, _: flushed.append(len(records)))
    writer.start()
    try:
        futures = []

        def submit(thread: int) -> None:
            for i in range(100):
                futures.append((thread, i, writer.submit([{"kind": "event",
                                                          "event_id": f"{thread}-{i}"}])))

        threads = [threading.Thread(target=submit, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for thread, i, future in futures:  # each future names the file holding its record
            assert {"kind": "event", "event_id": f"{thread}-{i}"} in lines(
                tmp_path / future.result(timeout=10))
    finally:
        writer.stop()
    files = sorted(tmp_path.glob("*.jsonl"))
    assert sum(len(lines(f)) for f in files) == 400 == sum(flushed)
    assert len(files) < 100, "400 submissions should share far fewer fsyncs"


def test_a_failing_disk_fails_the_waiting_requests_and_the_writer_recovers(tmp_path):
    (tmp_path / ".tmp").write_text("a file where the tmp folder should be")
    writer = SpoolWriter(tmp_path)
    writer.start()
    try:
        with pytest.raises(OSError):
            writer.submit([{"kind": "event", "event_id": "lost"}]).result(timeout=10)
        assert spool_depth(tmp_path) == 0
        (tmp_path / ".tmp").unlink()
        name = writer.submit([{"kind": "event", "event_id": "kept"}]).result(timeout=10)
        assert lines(tmp_path / name) == [{"kind": "event", "event_id": "kept"}]
    finally:
        writer.stop()


def test_a_record_that_is_not_strict_json_fails_alone(tmp_path):
    writer = SpoolWriter(tmp_path)
    writer.start()
    try:
        with pytest.raises(ValueError):
            writer.submit([{"kind": "event", "value": float("nan")}])
        assert writer.submit([{"kind": "event", "event_id": "ok"}]).result(timeout=10)
    finally:
        writer.stop()


def test_a_new_writer_removes_tmp_files_a_killed_one_left(tmp_path):
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "20260101T000000.000000Z-deadbeef.jsonl").write_text('{"torn": ')
    writer = SpoolWriter(tmp_path)
    writer.start()
    writer.stop()
    assert writer.stray_removed == 1 and list((tmp_path / ".tmp").iterdir()) == []
    assert spool_depth(tmp_path) == 0
