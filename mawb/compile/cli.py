"""The `mawb compile` command, registered onto the main Typer app by `register(app)`.

It lives with the compiler (not in `mawb/cli/`) so the command and the options of
`compile_airflow` change together; `mawb/cli/__init__.py` only calls `register`. Exit codes follow
`mawb validate`: 1 for an invalid flow (its diagnostics are printed), 2 for an unreadable
file or unusable options.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path  # noqa: TC003 - typer reads the annotations at run time
from typing import Annotated

import typer

from mawb.compile.airflow import DEFAULT_POOL_PREFIX, CompileError, compile_airflow
from mawb.compile.kubernetes import DEFAULT_IMAGE, DEFAULT_NAMESPACE, PodSettingsError
from mawb.compile.pools import import_command, pools_file_name
from mawb.model import FlowFileError, read_document
from mawb.validate import check_document

EXIT_INVALID = 1
EXIT_UNREADABLE = 2


class CompileTarget(StrEnum):
    AIRFLOW = "airflow"


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def compile_command(
    flow: Annotated[Path, typer.Argument(help="Flow file (JSON or YAML)")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the DAG file (the dags folder)")],
    target: Annotated[CompileTarget, typer.Option(help="Scheduler to compile for")] = (
        CompileTarget.AIRFLOW
    ),
    kubernetes: Annotated[
        bool, typer.Option("--kubernetes", help="Run every task as a Kubernetes pod")
    ] = False,
    partitions: Annotated[int, typer.Option(min=1, help="Contact partitions (tasks per node)")] = 1,
    schedule: Annotated[
        str | None, typer.Option(help="Override the flow's tick: 15m, 1h, cron or @daily")
    ] = None,
    image: Annotated[str, typer.Option(help="mawb image for --kubernetes")] = DEFAULT_IMAGE,
    namespace: Annotated[str, typer.Option(help="Namespace for --kubernetes")] = (
        DEFAULT_NAMESPACE
    ),
    home: Annotated[
        str | None, typer.Option(help="Workspace path the steps use (MAWB_HOME)")
    ] = None,
    task_shape: Annotated[
        str | None,
        typer.Option(help="canvas: one task per node; coarse: one task per partition running "
                     "every stage (default: coarse with --kubernetes, else canvas)"),
    ] = None,
    pool_prefix: Annotated[
        str, typer.Option(help="Pools <prefix>_p<k>, one single-slot pool per workspace "
                          "partition (one prefix per workspace on one Airflow)")
    ] = DEFAULT_POOL_PREFIX,
) -> None:
    """Compile a flow into an Apache Airflow 3 DAG file (a task per node, or per partition)."""
    if out.exists() and not out.is_dir():
        raise _fail(f"--out {out}: not a folder (the DAG file is written into a folder)",
                    EXIT_UNREADABLE)
    try:
        document = read_document(flow)
    except FlowFileError as error:
        raise _fail(str(error), EXIT_UNREADABLE) from None
    parsed, report = check_document(document)
    if parsed is None or not report.valid:
        for diagnostic in report.diagnostics:
            typer.secho(f"{flow}: {diagnostic}", fg=typer.colors.RED, err=True)
        raise _fail(f"{flow}: invalid ({len(report.errors)} errors), not compiled", EXIT_INVALID)
    try:
        path = compile_airflow(
            parsed,
            out,
            kubernetes=kubernetes,
            partitions=partitions,
            schedule=schedule,
            image=image,
            namespace=namespace,
            home=home,
            task_shape=task_shape,
            pool_prefix=pool_prefix,
        )
    except (CompileError, PodSettingsError) as error:
        raise _fail(str(error), EXIT_UNREADABLE) from None
    except OSError as error:  # an unwritable folder, a full disk
        raise _fail(f"--out {out}: {error.strerror or error}", EXIT_UNREADABLE) from None
    typer.echo(f"{flow}: wrote {path}")
    pools = out / pools_file_name(pool_prefix)
    typer.echo(f"pools: {partitions} single-slot pools in {pools}; create them once per Airflow "
               f"(the DAG runs nothing without them): {import_command(str(pools))}")


def register(app: typer.Typer) -> None:
    """Add `mawb compile` to the main app (called by `mawb/cli.py`)."""
    app.command("compile")(compile_command)
