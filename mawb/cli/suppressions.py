"""`mawb suppressions import CSV | list`: addresses and contacts that must never be messaged.

The CSV has an `address` and/or a `contact_id` column, optionally `channel` (email, sms,
web_push; empty = every channel) and `reason` (default `imported`). Every row is checked before
anything is written: a bad row is reported with its line and field and nothing is imported. An
address is suppressed in every partition (any contact may carry it); a contact in its own.
The dispatch rules check the list on every send, internal notifications included.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path  # noqa: TC003 - typer reads the annotations at run time
from typing import Annotated, Any

import typer

from mawb.cli import HomeOpt, JsonOpt, _home, emit_json, expected_failures, fail
from mawb.model import CONTACT_CHANNELS

CHANNELS = CONTACT_CHANNELS
MAX_PROBLEMS = 20

suppressions_app = typer.Typer(help="The suppression list (checked on every send).",
                               no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(suppressions_app, name="suppressions")


def read_suppressions(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows to insert and the problems found (line numbers count the header as line 1)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            if "address" not in header and "contact_id" not in header:
                return [], [f"{path}: needs an address or contact_id column "
                            f"(found: {', '.join(header) or 'no header'})"]
            rows, problems = [], []
            for line, raw in enumerate(reader, start=2):
                record = {key.strip(): (value or "").strip() for key, value in raw.items()
                          if key is not None}
                row, problem = _row(record, line)
                if problem:
                    problems.append(f"{path}:{line}: {problem}")
                elif row:
                    rows.append(row)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        return [], [f"{path}: unreadable ({error})"]
    return rows, problems


def _row(record: dict[str, str], line: int) -> tuple[dict[str, Any] | None, str | None]:
    address = record.get("address") or None
    contact = record.get("contact_id") or None
    channel = (record.get("channel") or "").lower() or None
    if address is None and contact is None:
        return None, "address and contact_id are both empty"
    if channel is not None and channel not in CHANNELS:
        return None, f"channel: {channel!r} is not one of {', '.join(CHANNELS)} (or empty)"
    if address is not None and (channel in (None, "email")) and "@" in address:
        address = address.lower()
    elif address is not None and channel == "email":
        return None, f"address: {address!r} is not an email address"
    reason = record.get("reason") or "imported"
    return {"address": address, "contact_id": None if address else contact,
            "channel": channel, "reason": reason[:200]}, None


@suppressions_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(metavar="CSV", help="CSV with address / contact_id")],
    source: Annotated[str | None, typer.Option(help="Recorded as the source (default: the "
                                                    "file name)")] = None,
    home: HomeOpt = None,
) -> None:
    """Add the CSV's addresses and contacts to the suppression list (all rows or none)."""
    import pandas as pd

    from mawb.engine.runner import workspace_at

    rows, problems = read_suppressions(file)
    if problems:
        more = (f" (+{len(problems) - 1} more below; nothing was imported)" if len(problems) > 1
                else " (nothing was imported)")
        exit_ = fail(problems[0] + more)
        for problem in problems[1:MAX_PROBLEMS]:
            typer.echo(f"  {problem}", err=True)
        raise exit_
    now = datetime.now(UTC).replace(tzinfo=None)
    with expected_failures(str(file)):
        workspace = workspace_at(_home(home))
        frame = pd.DataFrame(rows, columns=["address", "contact_id", "channel", "reason"])
        frame["source"] = source or file.name
        frame["at"] = now
        owner = frame["contact_id"].map(
            lambda c: -1 if c is None else workspace.partition_of(str(c)))
        for partition in range(workspace.partitions):
            mine = frame[frame["address"].notna() | (owner == partition)]
            if mine.empty:
                continue
            with workspace.connection(partition) as connection:
                connection.execute("BEGIN")
                connection.register("incoming", mine.astype(object).where(mine.notna(), None))
                connection.execute(
                    'INSERT INTO suppressions (address, contact_id, channel, reason, source, "at") '
                    'SELECT address, contact_id, channel, reason, source, CAST("at" AS TIMESTAMP) '
                    "FROM incoming")
                connection.unregister("incoming")
                connection.execute("COMMIT")
    addresses = int(frame["address"].notna().sum())
    typer.echo(f"{file}: {len(frame)} suppressions imported ({addresses} addresses, "
               f"{len(frame) - addresses} contacts)")


@suppressions_app.command("list")
def list_command(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Suppressions by channel and reason."""
    from mawb.engine.runner import workspace_at

    counts: dict[str, int] = {}
    with expected_failures():
        workspace = workspace_at(_home(home))
        for partition in range(workspace.partitions):
            with workspace.connection(partition, read_only=True) as connection:
                for channel, reason, count in connection.execute(
                    "SELECT coalesce(channel, 'all'), reason, count(DISTINCT "
                    "coalesce(address, contact_id)) FROM suppressions GROUP BY ALL ORDER BY ALL"
                ).fetchall():
                    label = f"{channel}:{reason}"
                    counts[label] = counts.get(label, 0) + int(count)
    if as_json:
        emit_json(counts)
        return
    if not counts:
        typer.echo("no suppressions")
    for label, count in counts.items():
        typer.echo(f"{label}  {count}")
