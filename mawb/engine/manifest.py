"""The workspace manifest, `workspace.json`: what a workspace is, so nobody has to guess.

It records the store schema version the workspace was created with (or last migrated to by
`mawb migrate`), the number of contact partitions, the mawb version that created it and
when. It is written once, when the workspace is created, and read by every command, page and
compiled DAG: the partition count decides which store file a contact lives in, so two
processes that disagree about it would split one contact's state across two files. A
disagreeing count is therefore refused, never silently adopted; changing it is
`mawb repartition N`.

A workspace made before the manifest existed gets one on its first writable open, with the
partition count its files show (`partitions/<p>.duckdb` or `store.duckdb`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

MANIFEST_FILE = "workspace.json"
FORMAT = 1


class ManifestError(ValueError):
    """The manifest is unreadable, or a caller's partition count disagrees with it."""


@dataclass(frozen=True)
class Manifest:
    """The contents of `workspace.json`."""

    partitions: int
    schema_version: int
    created_by: str
    created_at: str
    format: int = FORMAT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def path(home: Path) -> Path:
    return home / MANIFEST_FILE


def read(home: Path) -> Manifest | None:
    """The manifest of the workspace at `home`, or None when it has none yet."""
    file = path(home)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ManifestError(f"{file}: unreadable workspace manifest ({error})") from None
    try:
        manifest = Manifest(partitions=int(data["partitions"]),
                            schema_version=int(data["schema_version"]),
                            created_by=str(data["created_by"]),
                            created_at=str(data["created_at"]),
                            format=int(data.get("format", FORMAT)))
    except (KeyError, TypeError, ValueError) as error:
        raise ManifestError(f"{file}: workspace manifest lacks or mistypes {error}") from None
    if manifest.partitions < 1:
        raise ManifestError(f"{file}: partitions must be at least 1, got {manifest.partitions}")
    return manifest


def partitions_on_disk(home: Path) -> int:
    """The partition count a workspace without a manifest shows by its files."""
    found = list((home / "partitions").glob("*.duckdb"))
    return len(found) if found and not (home / "store.duckdb").exists() else 1


def resolve(home: Path, partitions: int | None) -> int:
    """The partition count to use at `home`, without writing anything.

    The manifest's count wins; a different explicit `partitions` is refused. Without a
    manifest: the explicit count, else what the files show."""
    manifest = read(home)
    if manifest is None:
        return partitions if partitions is not None else partitions_on_disk(home)
    check(home, manifest, partitions)
    return manifest.partitions


def check(home: Path, manifest: Manifest, partitions: int | None) -> None:
    if partitions is not None and partitions != manifest.partitions:
        raise ManifestError(
            f"workspace {home} has {manifest.partitions} partition"
            f"{'s' * (manifest.partitions != 1)} ({MANIFEST_FILE}), not {partitions}; "
            f"drop --partitions, or change the count with `mawb repartition {partitions}`"
        )


def ensure(home: Path, partitions: int | None = None) -> Manifest:
    """The manifest at `home`, created now if the workspace has none (see `resolve`)."""
    from mawb import __version__
    from mawb.engine.store import STORE_SCHEMA_VERSION

    manifest = read(home)
    if manifest is None:
        count = partitions if partitions is not None else partitions_on_disk(home)
        created = Manifest(partitions=count, schema_version=STORE_SCHEMA_VERSION,
                           created_by=f"mawb {__version__}",
                           created_at=datetime.now(UTC).isoformat(timespec="seconds"))
        manifest = created if _create(home, created) else read(home)
        if manifest is None:  # pragma: no cover - removed between create and read
            raise ManifestError(f"{path(home)} vanished while the workspace was created")
    check(home, manifest, partitions)
    return manifest


def update(home: Path, **changes: Any) -> Manifest:
    """Rewrite the manifest with `changes` (repartition, migrate), atomically."""
    manifest = read(home)
    if manifest is None:
        manifest = ensure(home)
    changed = replace(manifest, **changes)
    tmp = path(home).with_name(f".{MANIFEST_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(changed.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path(home))
    return changed


def _create(home: Path, manifest: Manifest) -> bool:
    """Write the manifest only if none exists (two first opens race: one wins, the other
    reads the winner's and is checked against it)."""
    home.mkdir(parents=True, exist_ok=True)
    tmp = path(home).with_name(f".{MANIFEST_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest.to_dict(), indent=2) + "\n", encoding="utf-8")
    try:
        os.link(tmp, path(home))
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


__all__ = ["MANIFEST_FILE", "Manifest", "ManifestError", "ensure", "read", "resolve", "update"]
