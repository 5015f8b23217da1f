"""Workspace commands: `mawb workspace info`, `mawb migrate`, `mawb repartition N` and
`mawb move-contacts` (in-flight contacts onto a newer flow version)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from mawb.cli import HomeOpt, JsonOpt, _home, emit_json, expected_failures

if TYPE_CHECKING:
    from pathlib import Path

workspace_app = typer.Typer(help="Inspect a workspace (its manifest and stores).",
                            no_args_is_help=True)


def info(home: Path) -> dict[str, Any]:
    """The manifest and, per partition, its store file, schema version and counts, read
    without migrating or creating anything."""
    import duckdb

    from mawb.engine import manifest
    from mawb.engine.layout import store_paths
    from mawb.engine.store import STORE_SCHEMA_VERSION, connect, schema_version
    from mawb.versions import VersionStore

    if not home.is_dir():
        raise FileNotFoundError(f"no workspace at {home}")
    found = manifest.read(home)
    count = found.partitions if found else manifest.partitions_on_disk(home)
    stores = []
    for index, path in enumerate(store_paths(home, count)):
        entry: dict[str, Any] = {"partition": index, "path": str(path), "exists": path.is_file()}
        if path.is_file():
            entry["bytes"] = path.stat().st_size
            connection = connect(path, read_only=True)
            try:
                entry["schema_version"] = schema_version(connection)
                for table in ("contacts", "enrollments"):
                    try:
                        row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
                        entry[table] = int(row[0]) if row else 0
                    except duckdb.CatalogException:
                        entry[table] = 0
            finally:
                connection.close()
        stores.append(entry)
    return {
        "home": str(home),
        "manifest": found.to_dict() if found else None,
        "partitions": count,
        "current_schema_version": STORE_SCHEMA_VERSION,
        "needs_migrate": any(s.get("schema_version", STORE_SCHEMA_VERSION) < STORE_SCHEMA_VERSION
                             for s in stores),
        "stores": stores,
        "flows": {flow_id: VersionStore(home).versions(flow_id)
                  for flow_id in VersionStore(home).flow_ids()},
    }


@workspace_app.command("info")
def info_command(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Show the workspace manifest, its partitions' stores and deployed flows."""
    with expected_failures():
        data = info(_home(home))
    if as_json:
        emit_json(data)
        return
    found = data["manifest"]
    typer.echo(f"workspace {data['home']}: {data['partitions']} partition"
               f"{'s' * (data['partitions'] != 1)}"
               + (f", created {found['created_at']} by {found['created_by']}" if found
                  else " (no workspace.json yet: written on the first writing command)"))
    for store in data["stores"]:
        if not store["exists"]:
            typer.echo(f"  partition {store['partition']}: {store['path']} (not created yet)")
            continue
        typer.echo(f"  partition {store['partition']}: {store['path']}  schema "
                   f"v{store['schema_version']}  {store['contacts']} contacts  "
                   f"{store['enrollments']} enrollments")
    if data["needs_migrate"]:
        typer.echo(f"  some stores are older than schema v{data['current_schema_version']}: "
                   "run `mawb migrate`")
    for flow_id, versions in data["flows"].items():
        typer.echo(f"  flow {flow_id}: versions {', '.join(map(str, versions))}")


def migrate_command(home: HomeOpt = None) -> None:
    """Bring every store of the workspace to the current schema (takes each store briefly)."""
    from mawb.engine import manifest
    from mawb.engine.store import STORE_SCHEMA_VERSION, connect, migrate
    from mawb.engine.workspace import Workspace

    with expected_failures():
        workspace = Workspace(_home(home))
        for partition in range(workspace.partitions):
            connection = connect(workspace.store_path(partition))
            try:
                found = migrate(connection)
            finally:
                connection.close()
            change = (f"v{found} -> v{STORE_SCHEMA_VERSION}" if found < STORE_SCHEMA_VERSION
                      else f"already v{STORE_SCHEMA_VERSION}")
            typer.echo(f"partition {partition}: {change}")
        manifest.update(workspace.home, schema_version=STORE_SCHEMA_VERSION)


def repartition_command(
    count: Annotated[int, typer.Argument(metavar="N", min=1, help="New number of partitions")],
    home: HomeOpt = None,
) -> None:
    """Move every contact and its state to N partitions (the workspace must be idle).

    The old stores are kept in backup/repartition-<time>/ until you delete them."""
    from mawb.engine.repartition import repartition

    with expected_failures():
        report = repartition(_home(home), count)
    typer.echo(f"repartitioned {report.before} -> {report.after} partitions; old stores in "
               f"{report.backup}")
    for table, (before, after) in sorted(report.rows.items()):
        if before or after:
            typer.echo(f"  {table}: {before} -> {after} rows")


def move_contacts_command(
    flow_id: Annotated[str, typer.Argument(metavar="FLOW", help="Deployed flow id")],
    to_version: Annotated[int | None, typer.Option(
        "--to", help="Version to move onto (default: the latest)")] = None,
    from_version: Annotated[int | None, typer.Option(
        "--from", help="Version to move from (default: every older version)")] = None,
    mapping: Annotated[list[str] | None, typer.Option(
        "--map", help="old_node=new_node for a node the new version renamed (repeat)")] = None,
    home: HomeOpt = None,
) -> None:
    """Move contacts in flight onto a newer version: same node id = same node; contacts at
    a node the new version lacks stay (and finish) on their version unless --map names its
    counterpart. While the service runs, the move is a command its loop applies."""
    from mawb.cli import _command, _route_to_service
    from mawb.engine.runner import workspace_at
    from mawb.versions import move_in_flight, plan_move

    with expected_failures(flow_id):
        workspace = workspace_at(_home(home))
        versions = workspace.versions(flow_id)
        if not versions:
            raise ValueError(f"flow {flow_id!r} is not deployed in {workspace.home}")
        target = to_version if to_version is not None else versions[-1]
        sources = [from_version] if from_version is not None else [
            v for v in versions if v < target]
        pairs = dict(_pair(text) for text in mapping or [])
        if not sources:
            typer.echo(f"{flow_id}: no version older than v{target}; nothing to move")
            return
        for source in sources:  # refuse a bad mapping here, before anything is queued
            plan_move(workspace.load_flow(flow_id, source), workspace.load_flow(flow_id, target),
                      pairs)
        commands = [_command("move", flow_id=flow_id, from_version=source, to_version=target,
                             mapping=pairs) for source in sources]
        if _route_to_service(workspace.home, commands, flow_id):
            return
        for source in sources:
            result = move_in_flight(workspace, flow_id, source, target, pairs)
            left = ", ".join(f"{n} at {node}" for node, n in result.stayed.items() if n)
            typer.echo(f"{flow_id}: v{source} -> v{target}: {result.moved} enrollments moved"
                       + (f"; stayed on v{source}: {left}" if left else ""))


def _pair(text: str) -> tuple[str, str]:
    source, separator, target = text.partition("=")
    if not separator or not source.strip() or not target.strip():
        raise ValueError(f"--map {text!r}: expected old_node=new_node")
    return source.strip(), target.strip()


def register(app: typer.Typer) -> None:
    app.add_typer(workspace_app, name="workspace")
    app.command("migrate")(migrate_command)
    app.command("repartition")(repartition_command)
    app.command("move-contacts")(move_contacts_command)


__all__ = ["info", "register"]
