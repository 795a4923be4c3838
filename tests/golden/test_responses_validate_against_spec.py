"""Responses the examples do not cover still validate against the spec definitions: errors
of each provider, LRO status monitors, JIT policies with requests in every state, NSGs
carrying JIT's multi-port rules, and paged lists with ``nextLink``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from azure_arm_emulator.world import load_world
from tests.golden.swagger import (
    JIT_SPEC,
    NETWORK_COMMON,
    NSG_SPEC,
    SECURITY_TYPES,
    definition,
    schema_errors,
)
from tests.integration.emulator.raw_arm import arm_call
from tests.support.emulator import SUBSCRIPTION, EmulatorHandle, run_emulator_in_process

RG = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-web"
POLICIES = f"{RG}/providers/Microsoft.Security/locations/westeurope/jitNetworkAccessPolicies"
NSGS = f"{RG}/providers/Microsoft.Network/networkSecurityGroups"
VM1 = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm-web-01"
SECURITY = "2020-01-01"
NETWORK = "2026-03-01"


@pytest.fixture
async def handle(tmp_path: Path) -> AsyncIterator[EmulatorHandle]:
    async with run_emulator_in_process(tmp_path, world=load_world()) as running:
        yield running


def _port(number: int, **extra: Any) -> dict[str, Any]:
    return {"number": number, "protocol": "TCP", "maxRequestAccessDuration": "PT3H", **extra}


async def _policy(handle: EmulatorHandle, name: str = "p1") -> None:
    body = {
        "kind": "Basic",
        "properties": {
            "virtualMachines": [
                {
                    "id": VM1,
                    "ports": [
                        _port(22, allowedSourceAddressPrefixes=["198.51.100.0/24"]),
                        _port(3389, allowedSourceAddressPrefix="*"),
                        _port(8443, allowedSourceAddressPrefix="*"),
                    ],
                }
            ]
        },
    }
    response = await arm_call(handle.endpoint, "PUT", f"{POLICIES}/{name}", body=body)
    assert response.status == 200, response.text


async def _initiate(handle: EmulatorHandle, number: int, minutes: int, **source: Any) -> None:
    end = await handle.admin.now() + timedelta(minutes=minutes)
    port = {"number": number, "endTimeUtc": end.isoformat(), **source}
    response = await arm_call(
        handle.endpoint,
        "POST",
        f"{POLICIES}/p1/initiate",
        body={"virtualMachines": [{"id": VM1, "ports": [port]}], "justification": "golden"},
    )
    assert response.status == 202, response.text
    assert schema_errors(definition(JIT_SPEC, "JitNetworkAccessRequest"), response.json()) == []


async def test_policy_with_requests_in_every_state_validates(handle: EmulatorHandle) -> None:
    await _policy(handle)
    await _initiate(handle, 22, 30, allowedSourceAddressPrefixes=["198.51.100.7"])
    await _initiate(handle, 3389, 120, allowedSourceAddressPrefix="192.0.2.1")
    await _initiate(handle, 3389, 120, allowedSourceAddressPrefix="192.0.2.2")
    await _initiate(handle, 8443, 120, allowedSourceAddressPrefix="192.0.2.3")
    await handle.admin.advance_clock(timedelta(hours=1))

    response = await arm_call(handle.endpoint, "GET", f"{POLICIES}/p1")

    body = response.json()
    states = {
        (p["status"], p["statusReason"])
        for r in body["properties"]["requests"]
        for p in r["virtualMachines"][0]["ports"]
    }
    assert states == {
        ("Revoked", "Expired"),
        ("Revoked", "NewerRequestInitiated"),
        ("Initiated", "UserRequested"),
    }
    assert schema_errors(definition(JIT_SPEC, "JitNetworkAccessPolicy"), body) == []


async def test_paged_policy_list_validates(handle: EmulatorHandle) -> None:
    await handle.admin.update_settings(page_size=1)
    await _policy(handle, "p1")
    await _policy(handle, "p2")

    response = await arm_call(handle.endpoint, "GET", POLICIES)

    body = response.json()
    assert "nextLink" in body
    assert schema_errors(definition(JIT_SPEC, "JitNetworkAccessPoliciesList"), body) == []


async def test_nsg_carrying_jit_rules_validates(handle: EmulatorHandle) -> None:
    await _policy(handle)
    await _initiate(handle, 22, 30, allowedSourceAddressPrefixes=["198.51.100.7", "198.51.100.8"])

    response = await arm_call(handle.endpoint, "GET", f"{NSGS}/nsg-vm-web-01", api_version=NETWORK)

    body = response.json()
    rules = body["properties"]["securityRules"]
    assert any(
        "destinationPortRanges" in r["properties"] and r["properties"]["destinationPortRanges"]
        for r in rules
    )
    assert any(r["properties"]["sourceAddressPrefixes"] for r in rules)
    assert schema_errors(definition(NSG_SPEC, "NetworkSecurityGroup"), body) == []


async def test_lro_status_monitor_validates(handle: EmulatorHandle) -> None:
    started = await arm_call(
        handle.endpoint,
        "DELETE",
        f"{NSGS}/nsg-vm-web-01/securityRules/allow-https-inbound",
        api_version=NETWORK,
    )
    monitor = started.headers["Azure-AsyncOperation"].removeprefix(handle.endpoint.base_url)

    response = await arm_call(
        handle.endpoint, "GET", monitor.partition("?")[0], api_version=NETWORK
    )

    assert response.json()["status"] in ("InProgress", "Succeeded")
    assert (
        schema_errors(definition(NETWORK_COMMON, "AzureAsyncOperationResult"), response.json())
        == []
    )


@pytest.mark.parametrize(
    ("method", "path", "api_version", "body", "schema"),
    [
        pytest.param(
            "GET",
            f"{POLICIES}/missing",
            SECURITY,
            None,
            definition(SECURITY_TYPES, "CloudError"),
            id="a missing JIT policy answers a security CloudError",
        ),
        pytest.param(
            "PUT",
            f"{POLICIES}/bad",
            SECURITY,
            {"properties": {"virtualMachines": [{"id": VM1, "ports": []}]}},
            definition(SECURITY_TYPES, "CloudError"),
            id="an invalid JIT policy answers a security CloudError",
        ),
        pytest.param(
            "GET",
            f"{NSGS}/missing",
            NETWORK,
            None,
            definition(NETWORK_COMMON, "CloudError"),
            id="a missing NSG answers a network CloudError",
        ),
        pytest.param(
            "PUT",
            f"{NSGS}/nsg-vm-web-01/securityRules/clash",
            NETWORK,
            {
                "properties": {
                    "protocol": "Tcp",
                    "sourcePortRange": "*",
                    "destinationPortRange": "80",
                    "sourceAddressPrefix": "*",
                    "destinationAddressPrefix": "*",
                    "access": "Allow",
                    "priority": 300,
                    "direction": "Inbound",
                }
            },
            definition(NETWORK_COMMON, "CloudError"),
            id="a conflicting security rule answers a network CloudError",
        ),
    ],
)
async def test_error_bodies_validate_as_cloud_errors(
    handle: EmulatorHandle,
    *,
    method: str,
    path: str,
    api_version: str,
    body: dict[str, Any] | None,
    schema: str,
) -> None:
    response = await arm_call(
        handle.endpoint,
        method,
        path,
        api_version=api_version,
        **({"body": body} if body is not None else {}),
    )

    assert response.status >= 400
    assert schema_errors(schema, response.json()) == []
