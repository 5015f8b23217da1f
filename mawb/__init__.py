"""mawb — the Marketing Automation Workbench.

The notebook API: load or build a flow, validate it, simulate it on contacts, sweep its
params, compile it for Airflow.

>>> import mawb
>>> flow = mawb.load_template("lead_welcome_v1")
>>> flow.validate().valid
True

`import mawb` stays light (the CLI and the workbench pay for it on every start): the
simulator (DuckDB, Plotly), the demo data and the compiler load on first use of their names.
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import Any

from mawb.model import Edge, Flow, Node, Settings, load, loads
from mawb.templates import list_templates, load_template, template_ids
from mawb.validate import Diagnostic, Report, validate_flow

__version__ = "0.1.0"

# Names loaded on first access: public name -> module that defines it.
_LAZY = {
    "simulate": "mawb.simulate",
    "sweep": "mawb.simulate",
    "SimulationResult": "mawb.simulate",
    "SweepResult": "mawb.simulate",
    "ResponseModel": "mawb.simulate",
    "compile_airflow": "mawb.compile",
    "PodSettings": "mawb.compile",
    "demo_contacts": "mawb.data",
    "demo_events": "mawb.data",
    "synthetic_contacts": "mawb.data",
    "synthetic_events": "mawb.data",
    "Workspace": "mawb.engine",
    "preview": "mawb.engine.preview",
}

__all__ = [
    "Diagnostic",
    "Edge",
    "Flow",
    "Node",
    "PodSettings",
    "Report",
    "ResponseModel",
    "Settings",
    "SimulationResult",
    "SweepResult",
    "Workspace",
    "__version__",
    "compile_airflow",
    "demo_contacts",
    "demo_events",
    "list_templates",
    "load",
    "load_template",
    "loads",
    "preview",
    "simulate",
    "sweep",
    "synthetic_contacts",
    "synthetic_events",
    "template_ids",
    "validate_flow",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mawb' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(ModuleType):
    """The `mawb` package object, so `mawb.simulate` stays the function.

    Importing the submodule `mawb.simulate` (the CLI and pages do, with `from mawb.simulate
    import ...`) makes the import system bind the module to the package attribute of the same
    name; that binding is skipped here, so the notebook API name always wins. The submodule
    stays reachable through `from mawb.simulate import ...` and `sys.modules`.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
