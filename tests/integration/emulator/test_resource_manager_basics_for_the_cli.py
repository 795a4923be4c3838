"""What the Azure CLI reads before any resource provider: the cloud's metadata (no token),
tenants, subscriptions and resource groups, seen as each principal may see them; and the
network/compute api-versions ``az`` 2.91 sends. (azure-mgmt-resource is no dependency of the
project, so these calls are raw HTTPS.)"""

from __future__ import annotations

import pytest

from tests.integration.emulator.raw_arm import arm_call
from tests.support.emulator import SECOND_SUBSCRIPTION, SUBSCRIPTION, EmulatorHandle

pytestmark = pytest.mark.integration

TENANT = "cccccccc-cccc-cccc-cccc-cccccccccccc"
READER = "rg-web-reader-token"  # the default world's token scoped to rg-web


async def test_cloud_metadata_points_arm_and_entra_at_the_emulator(
    emulator: EmulatorHandle,
) -> None:
    base = emulator.endpoint.base_url

    one = await arm_call(
        emulator.endpoint, "GET", "/metadata/endpoints", api_version="2022-09-01", token=None
    )
    listed = await arm_call(
        emulator.endpoint, "GET", "/metadata/endpoints", api_version="2019-05-01", token=None
    )

    assert one.status == 200
    cloud = one.json()
    assert cloud["resourceManager"].rstrip("/") == base
    assert cloud["authentication"]["loginEndpoint"] == base
    assert cloud["authentication"]["audiences"][0] == "https://management.core.windows.net/"
    assert listed.json() == [cloud]


async def test_an_unknown_metadata_version_is_refused(emulator: EmulatorHandle) -> None:
    response = await arm_call(
        emulator.endpoint, "GET", "/metadata/endpoints", api_version="2010-01-01", token=None
    )

    assert response.status == 400
    assert response.json()["error"]["code"] == "InvalidApiVersionParameter"


async def test_subscriptions_and_tenants_as_the_cli_lists_them(emulator: EmulatorHandle) -> None:
    subs = await arm_call(emulator.endpoint, "GET", "/subscriptions", api_version="2022-12-01")
    tenants = await arm_call(emulator.endpoint, "GET", "/tenants", api_version="2022-12-01")
    one = await arm_call(
        emulator.endpoint, "GET", f"/subscriptions/{SUBSCRIPTION}", api_version="2022-12-01"
    )

    assert sorted(s["subscriptionId"] for s in subs.json()["value"]) == [
        SUBSCRIPTION,
        SECOND_SUBSCRIPTION,
    ]
    assert {s["tenantId"] for s in subs.json()["value"]} == {TENANT}
    assert [t["tenantId"] for t in tenants.json()["value"]] == [TENANT]
    assert (one.json()["id"], one.json()["state"]) == (f"/subscriptions/{SUBSCRIPTION}", "Enabled")


async def test_a_principal_scoped_to_a_resource_group_sees_only_what_it_holds(
    emulator: EmulatorHandle,
) -> None:
    subs = await arm_call(
        emulator.endpoint, "GET", "/subscriptions", api_version="2022-12-01", token=READER
    )
    groups = await arm_call(
        emulator.endpoint,
        "GET",
        f"/subscriptions/{SUBSCRIPTION}/resourcegroups",
        api_version="2024-11-01",
        token=READER,
    )
    other = await arm_call(
        emulator.endpoint,
        "GET",
        f"/subscriptions/{SUBSCRIPTION}/resourcegroups/rg-ops",
        api_version="2024-11-01",
        token=READER,
    )

    assert [s["subscriptionId"] for s in subs.json()["value"]] == [SUBSCRIPTION]
    assert [g["name"] for g in groups.json()["value"]] == ["rg-web"]
    assert other.status == 403


async def test_a_resource_group_reads_as_arm_returns_it(emulator: EmulatorHandle) -> None:
    response = await arm_call(
        emulator.endpoint,
        "GET",
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-web",
        api_version="2024-11-01",
    )
    missing = await arm_call(
        emulator.endpoint,
        "GET",
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-nowhere",
        api_version="2024-11-01",
    )

    body = response.json()
    assert (body["name"], body["location"], body["type"]) == (
        "rg-web",
        "westeurope",
        "Microsoft.Resources/resourceGroups",
    )
    assert body["properties"] == {"provisioningState": "Succeeded"}
    assert missing.json()["error"]["code"] == "ResourceGroupNotFound"


@pytest.mark.parametrize(
    ("path", "api_version"),
    [
        pytest.param(
            "/resourceGroups/rg-web/providers/Microsoft.Network/networkSecurityGroups"
            "/nsg-vm-web-01/securityRules",
            "2022-01-01",
            id="az network nsg rule list",
        ),
        pytest.param(
            "/resourceGroups/rg-web/providers/Microsoft.Network/networkInterfaces/vm-web-01-nic",
            "2023-11-01",
            id="az network nic show",
        ),
        pytest.param(
            "/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines",
            "2024-11-01",
            id="az vm list",
        ),
        pytest.param(
            "/providers/Microsoft.Security/pricings/VirtualMachines",
            "2023-01-01",
            id="az security pricing show",
        ),
    ],
)
async def test_the_api_versions_az_sends_are_served(
    emulator: EmulatorHandle, path: str, api_version: str
) -> None:
    response = await arm_call(
        emulator.endpoint, "GET", f"/subscriptions/{SUBSCRIPTION}{path}", api_version=api_version
    )

    assert response.status == 200, response.text
