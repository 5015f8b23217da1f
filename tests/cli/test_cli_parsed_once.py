"""A CLI command parses and validates its flow once, however many layers look at the flow.

Loading, checking against the contacts' columns, deploying, simulating and every tick all ask
what the flow means; they share one analysis (`mawb.validate.analyse`) and one plan, so the
document is parsed into a Flow once, each node's params once, and the checks run once."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from cli_helpers import TEN_CONTACTS, cli
from pydantic import BaseModel

import mawb
from mawb import validate
from mawb.model import Flow
from mawb.nodes.base import NodeType

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Counter[str], int]:
    """A template saved under a fresh flow id (so no earlier test's analysis is reused) and
    a counter of the parses and validations of that flow."""
    flow_id = f"once_{uuid.uuid4().hex[:8]}"
    flow = mawb.load_template("lead_welcome_v1").model_copy(update={"id": flow_id})
    path = flow.save(tmp_path / "flow.json")
    calls: Counter[str] = Counter()

    real_analyse = validate._analyse

    def analyse(flow: Flow) -> validate.Analysis:
        calls["validated"] += flow.id == flow_id
        return real_analyse(flow)

    real_model_validate = BaseModel.__dict__["model_validate"].__func__

    def model_validate(cls: type[Flow], obj: Any, *args: Any, **kwargs: Any) -> Flow:
        calls["documents parsed"] += isinstance(obj, dict) and obj.get("id") == flow_id
        return real_model_validate(cls, obj, *args, **kwargs)

    real_parse = NodeType.__dict__["parse"].__func__

    def parse(cls: type[NodeType], params: Any) -> Any:
        calls["node params parsed"] += 1
        return real_parse(cls, params)

    monkeypatch.setattr(validate, "_analyse", analyse)
    monkeypatch.setattr(Flow, "model_validate", classmethod(model_validate))
    monkeypatch.setattr(NodeType, "parse", classmethod(parse))
    return path, calls, len(flow.nodes)


def _once(calls: Counter[str], node_count: int) -> None:
    assert calls == {"validated": 1, "documents parsed": 1, "node params parsed": node_count}


def test_validate_parses_and_validates_once(counted: tuple[Path, Counter[str], int]) -> None:
    path, calls, node_count = counted
    result = cli("validate", path)
    assert result.exit_code == 0, result.output
    _once(calls, node_count)


def test_simulate_parses_and_validates_once(counted: tuple[Path, Counter[str], int]) -> None:
    """Load, the column check, the simulator's own check, its deploy and every tick."""
    path, calls, node_count = counted
    result = cli("simulate", path, "--contacts", TEN_CONTACTS, "--days", 1, "--responses",
                 "none", "--json")
    assert result.exit_code == 0, result.output
    assert '"welcome"' in result.stdout  # it ran the flow
    _once(calls, node_count)


def test_run_once_parses_and_validates_once(counted: tuple[Path, Counter[str], int],
                                            tmp_path: Path) -> None:
    """Load, the check against the workspace's columns and types, deploy and a tick."""
    path, calls, node_count = counted
    home = tmp_path / "home"
    assert cli("import-contacts", TEN_CONTACTS, "--home", home).exit_code == 0
    calls.clear()
    result = cli("run", path, "--once", "--home", home)
    assert result.exit_code == 0, result.output
    _once(calls, node_count)
