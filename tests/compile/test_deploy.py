"""The deployment files, checked without Docker or a cluster: Dockerfile, .dockerignore,
deploy/values.yaml (official Airflow chart) and the manifests in deploy/.

There is no Docker engine here, so the image is never built: these tests hold the Dockerfile
to its contract (base image, install from the lock file, non-root, `mawb` entrypoint) and to
the names the compiler writes into DAGs (claim, Secret, service account, uid).
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from mawb.compile import PodSettings
from mawb.compile.kubernetes import DEFAULT_NAMESPACE, WORKER_UID, WORKSPACE_MOUNT

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def _final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def test_dockerfile_installs_mawb_from_the_lock_file() -> None:
    instructions = _instructions(ROOT / "Dockerfile")
    bases = [args.split()[0] for name, args in instructions if name == "FROM"]
    assert bases and all(base == "python:3.11-slim" for base in bases)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["requires-python"] == ">=3.11"
    runs = [args for name, args in instructions if name == "RUN"]
    syncs = [shlex.split(run) for run in runs if "uv sync" in run]
    assert syncs, "mawb must be installed with uv sync"
    for sync in syncs:
        assert sync[:2] == ["uv", "sync"]
        assert {"--frozen", "--no-dev"} <= set(sync)  # exactly the lock, no dev tools
        assert sync[sync.index("--extra") + 1] == "airflow"
    assert "airflow" in project["project"]["optional-dependencies"]
    assert "--no-editable" in syncs[-1]  # the final install does not point into /src
    lock_copy = next(
        i for i, (name, args) in enumerate(instructions) if name == "COPY" and "uv.lock" in args
    )
    first_sync = next(i for i, (name, args) in enumerate(instructions) if "uv sync" in args)
    assert lock_copy < first_sync
    # uv itself is pinned to the version the Makefile uses to write the lock file
    makefile_pin = re.search(r"uv==([\d.]+)", (ROOT / "Makefile").read_text(encoding="utf-8"))
    dockerfile_pin = re.search(r"ARG UV_VERSION=([\d.]+)", (ROOT / "Dockerfile").read_text())
    assert makefile_pin and dockerfile_pin and makefile_pin[1] == dockerfile_pin[1]


def test_dockerfile_runs_mawb_as_a_non_root_user() -> None:
    final = _final_stage(_instructions(ROOT / "Dockerfile"))
    users = [args for name, args in final if name == "USER"]
    assert users, "the final stage must switch away from root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == str(WORKER_UID)  # the uid the pods' securityContext (runAsUser) names
    entrypoints = [args for name, args in final if name == "ENTRYPOINT"]
    assert [json.loads(entry) for entry in entrypoints] == [["mawb"]]  # exec form
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "mawb" in project["project"]["scripts"]
    env = " ".join(args for name, args in final if name == "ENV")
    assert f"MAWB_HOME={WORKSPACE_MOUNT}" in env


def test_dockerignore_sends_only_what_the_dockerfile_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"  # everything else (.venv, .mawb workspaces with contacts) stays out
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for name, args in _instructions(ROOT / "Dockerfile"):
        if name == "COPY" and not args.startswith("--from"):
            copied.update(source.rstrip("/") for source in args.split()[:-1])
    assert copied == allowed
    assert all((ROOT / path).exists() for path in copied)


def _manifests(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


@pytest.mark.parametrize("name", ["mawb-pvc.yaml", "mawb-serviceaccount.yaml"])
def test_deploy_manifests_pass_kubernetes_validate(name: str) -> None:
    import kubernetes_validate

    version = kubernetes_validate.utils.latest_version()
    for manifest in _manifests(DEPLOY / name):
        kubernetes_validate.validate(manifest, version, strict=True)
        assert manifest["metadata"]["namespace"] == DEFAULT_NAMESPACE


def test_the_workspace_claim_is_the_one_the_pods_mount() -> None:
    settings = PodSettings()
    (claim,) = _manifests(DEPLOY / "mawb-pvc.yaml")
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["metadata"]["name"] == settings.workspace_claim
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # pods of all partitions, any node
    (account,) = _manifests(DEPLOY / "mawb-serviceaccount.yaml")
    assert account["metadata"]["name"] == settings.service_account
    assert account["automountServiceAccountToken"] is False


def test_helm_values_run_the_kubernetes_executor_with_the_mawb_claim() -> None:
    values = yaml.safe_load((DEPLOY / "values.yaml").read_text(encoding="utf-8"))
    assert values["executor"] == "KubernetesExecutor"
    assert values["allowPodLaunching"] is True
    assert values["airflowVersion"].startswith("3.")
    dags = values["dags"]
    assert dags["gitSync"]["enabled"] or dags["persistence"]["enabled"]
    assert values["config"]["kubernetes_executor"]["namespace"] == DEFAULT_NAMESPACE
    workers = values["workers"]
    (volume,) = workers["extraVolumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == PodSettings().workspace_claim
    (mount,) = workers["extraVolumeMounts"]
    assert (mount["name"], mount["mountPath"]) == (volume["name"], WORKSPACE_MOUNT)
    # secrets by reference only: names of Secrets, never passwords or keys
    assert values["data"]["metadataSecretName"] and values["fernetKeySecretName"]
    text = (DEPLOY / "values.yaml").read_text(encoding="utf-8")
    assert not re.search(r"(?im)^\s*(pass|password|fernetKey|secretKey)\s*:", text)
    assert "metadataConnection" not in values["data"]
