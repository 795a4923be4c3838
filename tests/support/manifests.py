"""Builders for JitPolicy / JitAccessRequest manifests used across unit, integration and e2e
tests. Defaults mirror examples/ and the emulator's default world."""

from __future__ import annotations

import copy
from typing import Any

GROUP = "azurejit.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-web"
LOCATION = "westeurope"


def port_rule(
    number: int = 22,
    *,
    prefixes: list[str] | None = None,
    max_duration: str = "3h",
    protocol: str = "TCP",
) -> dict[str, Any]:
    return {
        "number": number,
        "protocol": protocol,
        "allowedSourceAddressPrefixes": prefixes if prefixes is not None else ["198.51.100.0/24"],
        "maxRequestAccessDuration": max_duration,
    }


def policy_spec(
    vms: dict[str, list[dict[str, Any]]] | None = None,
    *,
    resource_group: str = RESOURCE_GROUP,
    subscription: str = SUBSCRIPTION,
    location: str = LOCATION,
    policy_name: str | None = None,
    deletion_policy: str = "Delete",
) -> dict[str, Any]:
    vms = vms if vms is not None else {"vm-web-01": [port_rule(22)]}
    azure: dict[str, Any] = {
        "subscriptionId": subscription,
        "resourceGroup": resource_group,
        "location": location,
    }
    if policy_name is not None:
        azure["policyName"] = policy_name
    return {
        "azure": azure,
        "virtualMachines": [{"name": name, "ports": ports} for name, ports in vms.items()],
        "deletionPolicy": deletion_policy,
    }


def request_spec(
    *,
    policy: str = "web-admins",
    vm: str = "vm-web-01",
    ports: list[tuple[int, str]] | None = None,
    duration: str = "1h",
    justification: str = "INC-4711 debugging",
) -> dict[str, Any]:
    return {
        "policyName": policy,
        "virtualMachine": vm,
        "ports": [
            {"number": n, "sourceAddressPrefix": p}
            for n, p in (ports if ports is not None else [(22, "198.51.100.7/32")])
        ],
        "duration": duration,
        "justification": justification,
    }


def manifest(
    kind: str, name: str, spec: dict[str, Any], namespace: str | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": metadata,
        "spec": copy.deepcopy(spec),
    }


def policy_manifest(
    name: str = "web-admins", namespace: str | None = None, **kw: Any
) -> dict[str, Any]:
    return manifest("JitPolicy", name, policy_spec(**kw), namespace)


def request_manifest(
    name: str = "ssh-inc-4711", namespace: str | None = None, **kw: Any
) -> dict[str, Any]:
    return manifest("JitAccessRequest", name, request_spec(**kw), namespace)
