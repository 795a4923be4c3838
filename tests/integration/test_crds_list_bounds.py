"""The list bounds of JitPolicy (which keep its CEL rules inside the API server's cost budget)
are usable: a policy filling every list to its maximum is accepted, one more item is not."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from tests.support.controlplane import CRD_DIR, ControlPlane


def _bounds() -> tuple[int, int, int]:
    """maxItems of virtualMachines, of their ports, and of a port's source prefixes."""
    with (CRD_DIR / "jitpolicies.azurejit.dev.yaml").open() as stream:
        crd = yaml.safe_load(stream)
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    vms = spec["properties"]["virtualMachines"]
    ports = vms["items"]["properties"]["ports"]
    prefixes = ports["items"]["properties"]["allowedSourceAddressPrefixes"]
    return vms["maxItems"], ports["maxItems"], prefixes["maxItems"]


def _policy(name: str, *, vms: int, ports: int, prefixes: int) -> dict[str, Any]:
    return {
        "apiVersion": "azurejit.dev/v1alpha1",
        "kind": "JitPolicy",
        "metadata": {"name": name},
        "spec": {
            "azure": {
                "subscriptionId": "00000000-0000-0000-0000-000000000000",
                "resourceGroup": "rg-big",
                "location": "westeurope",
            },
            "virtualMachines": [
                {
                    "name": f"vm-{v:03d}",
                    "ports": [
                        {
                            "number": 1000 + p,
                            # distinct /29 networks, the longest string form per list
                            "allowedSourceAddressPrefixes": [
                                f"10.{v % 256}.{p}.{8 * i}/29" for i in range(prefixes)
                            ],
                            "maxRequestAccessDuration": "24h",
                        }
                        for p in range(ports)
                    ],
                }
                for v in range(vms)
            ],
        },
    }


def test_a_policy_with_every_list_at_its_maximum_is_accepted(
    control_plane: ControlPlane, namespace: str
) -> None:
    vms, ports, prefixes = _bounds()
    with control_plane.api_client() as api:
        stored = k8s.CustomObjectsApi(api).create_namespaced_custom_object(
            "azurejit.dev",
            "v1alpha1",
            namespace,
            "jitpolicies",
            _policy("largest", vms=vms, ports=ports, prefixes=prefixes),
        )
    assert isinstance(stored, dict)
    assert len(stored["spec"]["virtualMachines"]) == vms


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ((1, 0, 0), "spec.virtualMachines: Too many: {}: must have at most {} items"),
        ((0, 1, 0), "spec.virtualMachines[0].ports: Too many: {}: must have at most {} items"),
        (
            (0, 0, 1),
            "spec.virtualMachines[0].ports[0].allowedSourceAddressPrefixes: Too many: {}: "
            "must have at most {} items",
        ),
    ],
    ids=[
        "one virtual machine too many is refused",
        "one port too many on a machine is refused",
        "one source prefix too many on a port is refused",
    ],
)
def test_one_item_past_a_list_maximum_is_refused(
    control_plane: ControlPlane, namespace: str, extra: tuple[int, int, int], fragment: str
) -> None:
    bounds = _bounds()
    # Only the list under test is over its bound; the others stay small.
    sizes = [bound + 1 if more else 1 for bound, more in zip(bounds, extra, strict=True)]
    over = next(bound for bound, more in zip(bounds, extra, strict=True) if more)

    with control_plane.api_client() as api, pytest.raises(k8s.ApiException) as refused:
        k8s.CustomObjectsApi(api).create_namespaced_custom_object(
            "azurejit.dev",
            "v1alpha1",
            namespace,
            "jitpolicies",
            _policy("too-big", vms=sizes[0], ports=sizes[1], prefixes=sizes[2]),
        )

    assert refused.value.status == 422
    assert fragment.format(over + 1, over) in (refused.value.body or "")
