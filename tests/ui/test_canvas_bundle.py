"""The committed canvas bundle is what the sources build, and Streamlit can find it.

The bundle in ``mawb/ui/canvas_assets`` is committed so installing mawb needs no Node. These
tests make sure it cannot drift from ``frontend/canvas``: a clean ``npm ci`` + ``npm run build``
must reproduce it byte for byte, and the TypeScript unit tests (Vitest) must pass. The fast
tests check the manifest Streamlit scans and the Python wrapper's input checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mawb.ui import canvas

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "frontend" / "canvas"
ASSETS = REPO / "mawb" / "ui" / "canvas_assets"
SOURCES = ("package.json", "package-lock.json", "tsconfig.json", "vite.config.ts", "src")


def _minimal_graph() -> dict[str, object]:
    return {
        "nodes": [
            {"id": "a", "type": "manual_trigger", "position": {"x": 0, "y": 0}, "data": {}},
        ],
        "edges": [],
    }


def test_committed_assets_are_exactly_the_fixed_file_names() -> None:
    assert sorted(path.name for path in ASSETS.iterdir()) == sorted(canvas.ASSET_FILES)
    paths = canvas.asset_paths()
    assert all(Path(str(path)).is_file() for path in paths.values())
    javascript = Path(str(paths["canvas.js"])).read_text(encoding="utf-8")
    # Streamlit imports the module and calls its default export.
    assert javascript.rstrip().endswith("as default};")
    assert "process.env.NODE_ENV" not in javascript
    stylesheet = Path(str(paths["canvas.css"])).read_text(encoding="utf-8")
    assert ".react-flow__handle" in stylesheet and ".mawb-node" in stylesheet


def test_streamlit_manifest_scan_finds_the_canvas() -> None:
    from streamlit.components.v2.manifest_scanner import scan_component_manifests

    found = {
        f"{manifest.name}.{component.name}": component.resolve_asset_root(root)
        for manifest, root in scan_component_manifests()
        for component in manifest.components
    }
    assert canvas.COMPONENT_NAME in found
    assert found[canvas.COMPONENT_NAME] == ASSETS.resolve()


def test_importing_the_module_does_not_touch_streamlit() -> None:
    code = "import sys, mawb.ui.canvas; print('streamlit' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert output.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ([], "graph must be a dict"),
        ({"nodes": []}, r"graph\['edges'\] must be a list"),
        ({"nodes": [{"type": "x"}], "edges": []}, r"graph\['nodes'\]\[0\] needs a string 'id'"),
        ({"nodes": [{"id": "a"}], "edges": []}, r"\('a'\) needs a string 'type'"),
        (
            {**_minimal_graph(), "edges": [{"id": "e", "source": "a"}]},
            r"graph\['edges'\]\[0\] needs string 'id', 'source' and 'target'",
        ),
    ],
)
def test_flow_canvas_rejects_malformed_graphs(graph: object, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        canvas.flow_canvas(graph, key="bad")  # type: ignore[arg-type]


def test_flow_canvas_rejects_non_positive_height() -> None:
    with pytest.raises(ValueError, match="height must be a positive"):
        canvas.flow_canvas(_minimal_graph(), key="bad", height=0)


def _npm(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    result = subprocess.run(
        ["npm", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"npm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return time.monotonic() - started


@pytest.fixture(scope="module")
def fresh_frontend(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the committed frontend sources with a clean `npm ci`."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not on PATH; install Node 20+ to rebuild the canvas bundle")
    workdir = tmp_path_factory.mktemp("canvas") / "canvas"
    workdir.mkdir()
    for name in SOURCES:
        source = FRONTEND / name
        if source.is_dir():
            shutil.copytree(source, workdir / name)
        else:
            shutil.copy2(source, workdir / name)
    seconds = _npm(["ci", "--no-audit", "--no-fund"], workdir)
    print(f"npm ci: {seconds:.1f}s")
    return workdir


@pytest.mark.slow
def test_clean_build_reproduces_the_committed_bundle(fresh_frontend: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "assets"
    seconds = _npm(["run", "build"], fresh_frontend, env={"MAWB_CANVAS_OUT_DIR": str(out_dir)})
    print(f"npm run build: {seconds:.1f}s")
    built = sorted(path.name for path in out_dir.iterdir())
    assert built == sorted(canvas.ASSET_FILES)
    for name in built:
        assert (out_dir / name).read_bytes() == (ASSETS / name).read_bytes(), (
            f"{name} differs from the committed bundle: run `npm run build` in frontend/canvas"
        )


@pytest.mark.slow
def test_typescript_unit_tests_pass(fresh_frontend: Path) -> None:
    result = subprocess.run(
        ["npm", "test"], cwd=fresh_frontend, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout


@pytest.mark.slow
def test_typescript_type_checks(fresh_frontend: Path) -> None:
    _npm(["run", "typecheck"], fresh_frontend)
