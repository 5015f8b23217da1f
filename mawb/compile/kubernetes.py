"""Pod settings for flows compiled with `--kubernetes`.

Every node task of a Kubernetes DAG is a pod running the mawb image. What those pods share
(namespace, image, service account, resources, node selector, the workspace volume, the
Secret that holds provider credentials) is decided here once, as plain data, and written
into the DAG file as literals. Credentials are never values in the DAG: the pods receive the
keys of a Kubernetes Secret as environment variables, which node params reference as
`env:NAME`. The flow file reaches the pod through a ConfigMap, one per flow version, whose
manifest the compiler writes next to the DAG (see deploy/README.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mawb.model import Flow

DEFAULT_IMAGE = "mawb:latest"
DEFAULT_NAMESPACE = "mawb"
WORKSPACE_MOUNT = "/var/lib/mawb"
WORKER_UID = 10001  # the non-root user of the Dockerfile's image
FLOW_MOUNT = "/etc/mawb/flows"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")


class PodSettingsError(ValueError):
    """A pod setting Kubernetes would reject; the message names the setting."""


@dataclass(frozen=True)
class PodSettings:
    """What every mawb pod of a flow shares. Defaults suit the Helm values in deploy/."""

    image: str = DEFAULT_IMAGE
    namespace: str = DEFAULT_NAMESPACE
    service_account: str = "mawb"
    workspace_claim: str = "mawb-workspace"  # ReadWriteMany PVC holding MAWB_HOME
    # The Secret's keys become env vars (node params use env:NAME); a name, not a value.
    secret_name: str = "mawb-secrets"  # noqa: S105
    requests: dict[str, str] = field(default_factory=lambda: {"cpu": "250m", "memory": "512Mi"})
    limits: dict[str, str] = field(default_factory=lambda: {"cpu": "1", "memory": "2Gi"})
    node_selector: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """Raise PodSettingsError for names and quantities Kubernetes would refuse."""
        for name in ("namespace", "service_account", "workspace_claim", "secret_name"):
            value = getattr(self, name)
            if not _DNS_LABEL.match(value):
                raise PodSettingsError(f"{name} {value!r} must be a DNS label (a-z, 0-9, -)")
        if not self.image or any(char.isspace() for char in self.image):
            raise PodSettingsError(f"image {self.image!r} must be a non-empty image reference")
        for kind in ("requests", "limits"):
            for resource, quantity in getattr(self, kind).items():
                if not _QUANTITY.match(quantity):
                    raise PodSettingsError(f"{kind}.{resource} {quantity!r} is not a quantity")


def flow_configmap_name(flow: Flow) -> str:
    """ConfigMap holding this flow version's file: immutable, like the version itself."""
    slug = re.sub(r"[^a-z0-9-]", "-", flow.id)[:40].strip("-") or "flow"
    return f"mawb-flow-{slug}-v{flow.version}"


def flow_file_name(flow: Flow) -> str:
    """File name of the flow snapshot beside the DAG and inside the ConfigMap."""
    return f"mawb_{flow.id}.json"


def configmap_manifest(flow: Flow, settings: PodSettings, flow_json: str) -> dict[str, Any]:
    """The ConfigMap manifest that carries the flow file into the pods (kubectl apply it)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": flow_configmap_name(flow),
            "namespace": settings.namespace,
            "labels": {"app.kubernetes.io/part-of": "mawb", "mawb/flow-version": str(flow.version)},
        },
        "immutable": True,
        "data": {flow_file_name(flow): flow_json},
    }
