"""People with real Kubernetes identities, for tests that run clients as separate processes.

The official Python client ignores a kubeconfig's impersonation fields (``as:``), and the
test control plane's CA key is not kept, so client certificates cannot be minted. Each
person is instead a ServiceAccount of the test namespace with a TokenRequest token: a real
authentication, known to the API server as ``system:serviceaccount:<namespace>:<name>``.
Their kubeconfig's context carries the namespace, as a user's usually does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.support.controlplane import ControlPlane, service_account_kubeconfig


@dataclass(frozen=True)
class KubeUser:
    name: str  # short name: alice
    username: str  # as the API server knows it
    kubeconfig: Path


def subject_for(namespace: str) -> Callable[[str], dict[str, str]]:
    """RoleBinding subjects naming the people of ``namespace`` (their ServiceAccounts)."""

    def subject(name: str) -> dict[str, str]:
        return {"kind": "ServiceAccount", "name": name, "namespace": namespace}

    return subject


def kube_user(
    control_plane: ControlPlane, *, namespace: str, name: str, directory: Path
) -> KubeUser:
    """A ServiceAccount ``name`` in ``namespace`` and a kubeconfig whose context defaults to
    that namespace."""
    path = service_account_kubeconfig(
        control_plane,
        namespace=namespace,
        name=name,
        path=directory / f"{name}.kubeconfig",
    )
    config = yaml.safe_load(path.read_text())
    for context in config["contexts"]:
        context["context"]["namespace"] = namespace
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return KubeUser(
        name=name,
        username=f"system:serviceaccount:{namespace}:{name}",
        kubeconfig=path,
    )
