"""Every notebook runs top to bottom against the installed package, and its committed copy is
an executed, small, error-free document.

The notebooks are documentation that asserts its own key results in a final cell (a chosen
threshold in the swept range, a non-empty backtest, a DAG that imports), so executing them is
the test. They run in a fresh `python3` kernel of this environment, from `notebooks/`, exactly
as `notebooks/execute.py` re-executes them before they are committed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest

if TYPE_CHECKING:
    from types import ModuleType

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
EXPECTED = [
    "01_quickstart.ipynb",
    "02_tune_scoring_thresholds.ipynb",
    "03_backtest_on_history.ipynb",
    "04_build_compile_deploy.ipynb",
]
MAX_BYTES = 300_000


def _executor() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notebook_executor", NOTEBOOKS / "execute.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXECUTOR = _executor()


def _code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_notebooks_are_the_documented_four() -> None:
    assert [path.name for path in EXECUTOR.notebook_paths()] == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_notebook_is_executed_small_and_asserts_its_results(name: str) -> None:
    path = NOTEBOOKS / name
    assert path.stat().st_size < MAX_BYTES, "outputs too large: embed no plotly.js"
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    cells = _code_cells(notebook)
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), "re-run notebooks/execute.py and commit"
    outputs = [output for cell in cells for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    last = cells[-1]
    assert "assert " in last.source, "the last cell checks the notebook's key results"
    assert any("checks passed" in o.get("text", "") for o in last.outputs)
    markdown = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    assert markdown[0].source.startswith("# ") and len(markdown) >= 5  # it reads as a document


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_executes_top_to_bottom(name: str, notebook_timings: dict[str, float]) -> None:
    notebook, seconds = EXECUTOR.execute(NOTEBOOKS / name)
    notebook_timings[name] = seconds
    last = _code_cells(notebook)[-1]
    printed = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
    assert "checks passed" in printed


def test_progress_bars_are_stripped_but_other_stderr_is_kept() -> None:
    bar = "sweeping x:  50%|█████     | 2/4 [00:18<00:18,  9.04s/it]\r"
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=bar * 3 + "\n"),
        nbformat.v4.new_output("stream", name="stderr", text=bar + "UserWarning: careful\n"),
        nbformat.v4.new_output("stream", name="stdout", text=bar),
    ]
    widget = {"application/vnd.jupyter.widget-view+json": {"model_id": "m"}, "text/plain": bar}
    cell.outputs.append(nbformat.v4.new_output("display_data", data=widget))
    notebook.cells.append(cell)
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    EXECUTOR.strip_progress(notebook)
    assert [o.text for o in cell.outputs] == [bar + "UserWarning: careful\n", bar]
    assert "widgets" not in notebook.metadata
