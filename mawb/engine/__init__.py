"""The set-based engine: a DuckDB store advanced one tick at a time, whole cohorts per step."""

from __future__ import annotations

from mawb.engine.workspace import DISPATCH, INGEST, Workspace, run_stage

__all__ = ["DISPATCH", "INGEST", "Workspace", "run_stage"]
