"""Routing, api-versions and scopes as ARM applies them, without a server."""

from __future__ import annotations

import pytest

from azure_arm_emulator.arm import authenticate, authorize, check_api_version
from azure_arm_emulator.core import Emulator
from azure_arm_emulator.errors import ArmError
from azure_arm_emulator.store import Principal
from azure_arm_emulator.world import load_world

SUB = "00000000-0000-0000-0000-000000000000"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-web"
NSG = f"{RG}/providers/Microsoft.Network/networkSecurityGroups/n"


@pytest.fixture(scope="module")
def emulator() -> Emulator:
    return Emulator(load_world())


def test_literal_segments_match_in_any_case(emulator: Emulator) -> None:
    shouted = f"/SUBSCRIPTIONS/{SUB}/RESOURCEGROUPS/rg-web/PROVIDERS/MICROSOFT.NETWORK"
    route, params = emulator.router.resolve("GET", f"{shouted}/NETWORKSECURITYGROUPS/MyNsg")

    assert route.operation_id == "NetworkSecurityGroups_Get"
    assert params["networkSecurityGroupName"] == "MyNsg"


@pytest.mark.parametrize(
    ("operation", "version"),
    [
        pytest.param("JitNetworkAccessPolicies_Get", "2020-01-01", id="JIT serves 2020-01-01"),
        pytest.param("SecurityRules_Delete", "2026-03-01", id="network serves the SDK's version"),
        pytest.param("SecurityRules_Delete", "2024-07-01", id="network serves the examples'"),
        pytest.param("VirtualMachines_Get", "2026-04-01", id="compute serves the SDK's version"),
        pytest.param("VirtualMachines_Get", "2025-11-01", id="compute serves the examples'"),
    ],
)
def test_routes_serve_the_sdk_and_spec_api_versions(
    emulator: Emulator, operation: str, version: str
) -> None:
    [route] = [r for r in emulator.router.routes if r.operation_id == operation]

    assert check_api_version(route, {"api-version": version}, location="westeurope") == version


def test_every_spec_operation_of_the_jit_api_is_routed(emulator: Emulator) -> None:
    operations = {r.operation_id for r in emulator.router.routes}

    assert {
        "JitNetworkAccessPolicies_List",
        "JitNetworkAccessPolicies_ListByRegion",
        "JitNetworkAccessPolicies_ListByResourceGroup",
        "JitNetworkAccessPolicies_ListByResourceGroupAndRegion",
        "JitNetworkAccessPolicies_Get",
        "JitNetworkAccessPolicies_CreateOrUpdate",
        "JitNetworkAccessPolicies_Delete",
        "JitNetworkAccessPolicies_Initiate",
    } <= operations


def test_scopes_cover_their_subtree_and_nothing_beside_it(emulator: Emulator) -> None:
    route, _ = emulator.router.resolve("GET", NSG)
    reader = Principal("r", "oid", (f"/subscriptions/{SUB}/resourceGroups/rg-web",))

    authorize(reader, route, NSG)
    with pytest.raises(ArmError) as caught:
        authorize(reader, route, NSG.replace("rg-web", "rg-web-2"))

    assert caught.value.code == "AuthorizationFailed"
    assert "'Microsoft.Network/networkSecurityGroups/read'" in caught.value.message


def test_any_bearer_is_accepted_unless_tokens_are_strict() -> None:
    anyone = authenticate("Bearer whatever", tokens={}, accept_any=True)

    with pytest.raises(ArmError) as caught:
        authenticate("Bearer whatever", tokens={}, accept_any=False)

    assert anyone.scopes is None
    assert caught.value.code == "InvalidAuthenticationToken"
