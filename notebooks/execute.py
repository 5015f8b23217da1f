"""Re-execute the notebooks top to bottom and save them with their outputs.

The notebooks are documentation whose outputs are committed, so they must be re-run whenever
the library changes what they show. Usage, from the repository root:

    python notebooks/execute.py              # every notebook
    python notebooks/execute.py 02 04        # the notebooks whose names start with 02 or 04
    python notebooks/execute.py --check      # execute without saving (what the tests do)

Each notebook runs in a fresh `python3` kernel of the current environment, with `notebooks/`
as working directory. Progress bars are stripped from the saved outputs (they are noise once
the run is over), and cell timings are not recorded, so re-running an unchanged notebook
changes nothing but what the library really prints.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent
TIMEOUT = 600  # seconds per cell
_WIDGET = "application/vnd.jupyter.widget-view+json"
_PROGRESS = re.compile(
    r"^\s*$"  # blank pieces left between carriage returns
    r"|\d+%\|.*\|"  # a tqdm bar
    r"|IProgress not found|from \.autonotebook import tqdm"  # tqdm without ipywidgets
)


def notebook_paths(prefixes: list[str] | None = None) -> list[Path]:
    """The notebooks in reading order, optionally only those whose names start with a prefix."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if prefixes:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in prefixes)]
    return paths


def execute(path: Path, timeout: int = TIMEOUT) -> tuple[nbformat.NotebookNode, float]:
    """Run a notebook in a fresh kernel; returns it (with outputs) and the seconds it took.

    Raises nbclient.exceptions.CellExecutionError naming the cell when any cell fails.
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=timeout,
        record_timing=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    started = time.perf_counter()
    client.execute()
    return notebook, time.perf_counter() - started


def strip_progress(notebook: nbformat.NotebookNode) -> None:
    """Drop outputs that hold nothing but progress bars: text bars on stderr, and the
    ipywidgets bars tqdm.auto draws when ipywidgets is installed (with their saved state)."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = [output for output in cell.outputs if not _only_progress(output)]


def _only_progress(output: nbformat.NotebookNode) -> bool:
    if _WIDGET in output.get("data", {}):
        return True
    if output.get("output_type") != "stream" or output.get("name") != "stderr":
        return False
    pieces = re.split(r"[\r\n]", output.get("text", ""))
    return all(_PROGRESS.search(piece) for piece in pieces)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="*", help="run only notebooks starting with these")
    parser.add_argument("--check", action="store_true", help="execute without saving")
    options = parser.parse_args(argv)
    total = 0.0
    for path in notebook_paths(options.prefixes):
        notebook, seconds = execute(path)
        total += seconds
        strip_progress(notebook)
        if not options.check:
            nbformat.write(notebook, path)
        size = path.stat().st_size / 1024
        print(f"{path.name}: {seconds:.1f} s, {size:.0f} KB", flush=True)
    print(f"total: {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
