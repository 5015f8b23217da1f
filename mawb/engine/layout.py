"""Where a workspace keeps its files, and which partition holds a contact.

Layout (default `./.mawb`, or `MAWB_HOME`): `workspace.json` (the manifest, see
`engine.manifest`), `store.duckdb` (one partition) or `partitions/<p>.duckdb`,
`flows/<flow id>/v<version>.json` (immutable versions), `spool/` (accepted intake). The engine,
the version store and the readers all find files here, so no two of them disagree about a path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from mawb.validate import SLUG


def default_home() -> Path:
    return Path(os.environ.get("MAWB_HOME", ".mawb"))


def store_path(home: Path, partitions: int, partition: int = 0) -> Path:
    if partitions == 1:
        return home / "store.duckdb"
    folder = home / "partitions"
    folder.mkdir(exist_ok=True)
    return folder / f"{partition}.duckdb"


def flow_path(home: Path, flow_id: str, version: int) -> Path:
    if not SLUG.match(flow_id):  # ids are slugs everywhere: no path outside flows/
        raise ValueError(f"flow id {flow_id!r} must be a lower-case slug")
    return home / "flows" / flow_id / f"v{version}.json"


def versions(home: Path, flow_id: str) -> list[int]:
    if not SLUG.match(flow_id):
        return []
    folder = home / "flows" / flow_id
    return sorted(int(p.stem[1:]) for p in folder.glob("v*.json")) if folder.is_dir() else []


def split(frame: pd.DataFrame, partitions: int) -> list[tuple[int, pd.DataFrame]]:
    """Each partition's share of a frame of contacts (or events), by contact_id."""
    if partitions == 1:
        return [(0, frame)]
    keys = frame["contact_id"].astype(str)
    buckets = pd.util.hash_pandas_object(keys, index=False).to_numpy() % partitions
    return [(p, frame[buckets == p]) for p in range(partitions)]


def partition_of(contact_id: str, partitions: int) -> int:
    if partitions == 1:
        return 0
    value = pd.util.hash_pandas_object(pd.Series([contact_id]), index=False).iloc[0]
    return int(value % partitions)


__all__ = ["default_home", "flow_path", "partition_of", "split", "store_path", "versions"]
