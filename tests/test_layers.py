"""Layers point down: import-linter keeps the contract, and `import mawb` stays light.

DESIGN.md section 2 stacks mawb from the file model up to the CLI; lower layers never import
upper ones. The contract lives in pyproject.toml and is checked here with import-linter. A second
check runs `import mawb` in a fresh interpreter: notebooks and the CLI must not pay for (or need)
Airflow or Streamlit unless they use them.
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

# The layering the code actually has (validate uses the node registry, so nodes sit below it;
# simulate builds on analytics). Optional "(...)" layers may not exist yet. This is the text
# proposed for pyproject.toml; once pyproject.toml carries it the xfails below start passing.
CORRECTED_CONTRACT = """
[tool.importlinter]
root_packages = ["mawb"]

[[tool.importlinter.contracts]]
name = "mawb layers point down"
type = "layers"
layers = [
    "mawb.cli",
    "mawb.ui",
    "(mawb.compile) | (mawb.simulate)",
    "(mawb.analytics)",
    "(mawb.engine)",
    "(mawb.channels)",
    "mawb.data",
    "mawb.validate | mawb.templates",
    "mawb.nodes | mawb.graph",
    "mawb.expr | mawb.personalize | mawb.intake",
    "mawb.model",
]
containers = []
ignore_imports = [
    # Flow.validate() is a notebook convenience that imports lazily, inside the method.
    "mawb.model -> mawb.validate",
]
"""


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


def test_corrected_contract_is_kept(tmp_path: Path) -> None:
    config = tmp_path / "importlinter.toml"
    config.write_text(CORRECTED_CONTRACT, encoding="utf-8")
    done = lint_imports(config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_corrected_contract_names_every_top_level_module() -> None:
    listed = set(contract_layers(CORRECTED_CONTRACT))
    assert top_level_modules() - listed <= {"mawb.display"}  # notebook-only HTML helpers


@pytest.mark.xfail(
    strict=True,
    reason="pyproject.toml's contract puts mawb.nodes above mawb.validate (validate imports the "
    "registry), makes compile/simulate/analytics independent (simulate imports analytics), has "
    "no ignore for Flow.validate()'s lazy import and requires layers that do not exist yet; "
    "see CORRECTED_CONTRACT",
)
def test_pyproject_contract_is_kept() -> None:
    done = lint_imports(ROOT / "pyproject.toml")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.xfail(
    strict=True,
    reason="pyproject.toml's layers omit mawb.graph, mawb.personalize, mawb.templates, "
    "mawb.data and mawb.intake, so nothing constrains them",
)
def test_pyproject_contract_names_every_top_level_module() -> None:
    listed = set(contract_layers((ROOT / "pyproject.toml").read_text(encoding="utf-8")))
    assert top_level_modules() - listed <= {"mawb.display"}


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
