"""Deploy: save an immutable flow version and give the stores the columns it writes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mawb import nodes
from mawb.engine.cohort import quote
from mawb.engine.store import contact_columns
from mawb.model import load
from mawb.validate import FlowInvalidError, validate_flow

if TYPE_CHECKING:
    from collections.abc import Iterable

    import duckdb

    from mawb.engine.workspace import Workspace
    from mawb.model import Flow


def deploy(workspace: Workspace, flow: Flow, partitions: Iterable[int] | None = None) -> Flow:
    """Save an immutable flow version (refusing invalid flows) and prepare its columns.

    `partitions` limits the column preparation to those stores (a partition's step
    prepares its own); by default every partition is prepared."""
    report = validate_flow(flow)
    if not report.valid:
        raise FlowInvalidError(flow.id, report)
    path = workspace.flow_path(flow.id, flow.version)
    document = flow.model_copy(update={"ui": flow.ui.model_copy(update={"positions": {}})})
    if path.exists():
        saved = load(path)
        if saved.model_dump(exclude={"ui"}) != document.model_dump(exclude={"ui"}):
            raise ValueError(
                f"flow {flow.id} version {flow.version} already exists with different "
                "content; saved versions are immutable, bump the version"
            )
    else:
        flow.save(path)
    for partition in range(workspace.partitions) if partitions is None else partitions:
        with workspace.connection(partition) as connection:
            ensure_written_columns(connection, flow)
    return flow


def ensure_written_columns(connection: duckdb.DuckDBPyConnection, flow: Flow) -> None:
    """Every attribute a flow writes exists as a column before the flow runs."""
    wanted: dict[str, str] = {}
    for node in flow.nodes:
        params = nodes.get(node.type).parse(node.params)
        for name, value in (getattr(params, "set", None) or {}).items():
            wanted[name] = _sql_type(value)
        for name in getattr(params, "increment", None) or {}:
            wanted[name] = "DOUBLE"
        if getattr(params, "mirror_attributes", False):
            for name, value in params.fields.items():  # type: ignore[attr-defined]
                wanted[name] = _sql_type(value)
        for name in getattr(params, "store", None) or {}:
            wanted[name] = "VARCHAR"
    existing = contact_columns(connection)
    for name, dtype in wanted.items():
        if name not in existing:
            connection.execute(f"ALTER TABLE contacts ADD COLUMN {quote(name)} {dtype}")
        elif existing[name] != dtype and _all_null(connection, name):
            # Imported without a single value, so its type was a guess: take the flow's.
            connection.execute(
                f"ALTER TABLE contacts ALTER COLUMN {quote(name)} SET DATA TYPE {dtype} "
                f"USING CAST(NULL AS {dtype})"
            )


def _all_null(connection: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = connection.execute(
        f"SELECT count({quote(name)}) FROM contacts"
    ).fetchone()
    return row is None or row[0] == 0


def _sql_type(value: object) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "DOUBLE"
    return "VARCHAR"


__all__ = ["deploy", "ensure_written_columns"]
