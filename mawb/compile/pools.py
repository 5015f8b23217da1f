"""Single-slot Airflow pools, one per workspace partition: one task at a time writes a partition.

Every task of a compiled DAG that writes partition k (every task: each stage writes its
partition's store) runs in the pool `<prefix>_p<k>` with one slot. The pools belong to the
workspace, not to a flow: the DAGs of every flow of one workspace share them, so two flows'
ticks take turns on a partition instead of racing for DuckDB's file lock, and a scheduler that
falls behind still never starts two tasks of one partition together while the first is queued
or running. Airflow does not create pools from DAG files (the scheduler only reads them), so
`mawb compile` writes `<prefix>_pools.json` for `airflow pools import` (or the REST API) and
says so; a DAG whose pools are missing is not run at all (Airflow leaves its tasks scheduled
and shows a "non-existent pool" warning), which is the safe way to fail.

A pool counts task instances by their state in Airflow's database, not processes: a try the
scheduler has given up on (a missed heartbeat) frees its slot while its process may still be
stopping. DuckDB's file lock and the store's `runs` table stay the line behind the pool.
"""

from __future__ import annotations

import json

POOL_SLOTS = 1


def pool_template(prefix: str) -> str:
    """`str.format` template of the pool names (prefixes hold no braces)."""
    return f"{prefix}_p{{}}"


def pool_name(prefix: str, partition: int) -> str:
    """The pool of one workspace partition.

    >>> pool_name("mawb", 3)
    'mawb_p3'
    """
    return pool_template(prefix).format(partition)


def pools_file_name(prefix: str) -> str:
    return f"{prefix}_pools.json"


def pools_document(prefix: str, partitions: int) -> str:
    """The pools in `airflow pools import` format (name -> slots, description)."""
    pools = {
        pool_name(prefix, partition): {
            "slots": POOL_SLOTS,
            "description": f"mawb workspace partition {partition}: one writing task at a time",
            "include_deferred": True,
        }
        for partition in range(partitions)
    }
    return json.dumps(pools, indent=2) + "\n"


def import_command(path: str) -> str:
    """The command that creates (or updates) the pools from the file `mawb compile` wrote."""
    return f"airflow pools import {path}"
