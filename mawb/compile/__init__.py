"""Compile flows for production schedulers: Apache Airflow 3 DAG files (+ Kubernetes pods).

The compiler only writes text, so importing it never imports Airflow. See docs/architecture.md
and deploy/README.md for how the generated files are deployed.
"""

from __future__ import annotations

from mawb.compile.airflow import CompileError, compile_airflow, dag_source, schedule_expression
from mawb.compile.kubernetes import PodSettings, PodSettingsError

__all__ = [
    "CompileError",
    "PodSettings",
    "PodSettingsError",
    "compile_airflow",
    "dag_source",
    "schedule_expression",
]
