"""Layers point down: import-linter keeps the contract, and `import mawb` stays light.

docs/architecture.md (section 1) stacks mawb from the file model up to the CLI; lower layers
never import upper ones. The contract lives in pyproject.toml and is checked here with
import-linter. A second check runs `import mawb` in a fresh interpreter: notebooks and the CLI
must not pay for (or need) Airflow or Streamlit unless they use them.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import mawb

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(config: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.skip("import-linter is not installed in this environment")
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def contract_layers(toml_text: str) -> list[str]:
    contract = tomllib.loads(toml_text)["tool"]["importlinter"]["contracts"][0]
    names = []
    for layer in contract["layers"]:
        names += [part.strip().strip("()") for part in layer.replace("|", ":").split(":")]
    return names


def top_level_modules() -> set[str]:
    return {f"mawb.{info.name}" for info in pkgutil.iter_modules(mawb.__path__)}


def test_pyproject_contract_is_kept() -> None:
    done = lint_imports(ROOT / "pyproject.toml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout  # the layers, and no test support shipped


def test_pyproject_contract_names_every_top_level_module() -> None:
    listed = set(contract_layers((ROOT / "pyproject.toml").read_text(encoding="utf-8")))
    assert top_level_modules() <= listed, "add new modules to a layer in pyproject.toml"


@pytest.mark.parametrize("module", ["mawb", "mawb.cli"])
def test_import_stays_light(module: str) -> None:
    code = (
        f"import json, sys; import {module}; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert "mawb" in loaded
    assert not loaded & {"airflow", "streamlit"}
