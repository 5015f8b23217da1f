"""mawb — the Marketing Automation Workbench.

The notebook API: load or build a flow, validate it, simulate it on contacts, sweep its
params, compile it for Airflow.

>>> import mawb
>>> flow = mawb.load_template("lead_welcome_v1")
>>> flow.validate().valid
True
"""

from __future__ import annotations

from mawb.model import Edge, Flow, Node, Settings, load, loads
from mawb.templates import list_templates, load_template, template_ids
from mawb.validate import Diagnostic, Report, validate_flow

__version__ = "0.1.0"

__all__ = [
    "Diagnostic",
    "Edge",
    "Flow",
    "Node",
    "Report",
    "Settings",
    "__version__",
    "list_templates",
    "load",
    "load_template",
    "loads",
    "template_ids",
    "validate_flow",
]
