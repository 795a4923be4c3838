"""Changes made behind a client's back (another admin editing or deleting a JIT policy, a
rule deleted by hand), and an in-process emulator holding a large generated world."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from azure.mgmt.security.aio import SecurityCenter

from azure_arm_emulator.world import generate_world
from tests.integration.emulator.builders import LOCATION, RG, policy, port_rule, vm_id
from tests.support.emulator import (
    SUBSCRIPTION,
    EmulatorHandle,
    quick_settings,
    run_emulator_in_process,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def web_admins(security_aio: SecurityCenter) -> None:
    await security_aio.jit_network_access_policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)]))
    )


@pytest.mark.usefixtures("web_admins")
async def test_policy_changed_out_of_band_is_what_the_next_read_sees(
    security_aio: SecurityCenter, emulator: EmulatorHandle
) -> None:
    body = {
        "properties": {
            "virtualMachines": [
                {
                    "id": vm_id("vm-web-01"),
                    "ports": [
                        {
                            "number": 22,
                            "protocol": "*",
                            "allowedSourceAddressPrefix": "*",
                            "maxRequestAccessDuration": "P1D",
                        }
                    ],
                }
            ]
        }
    }

    await emulator.admin.put_policy_out_of_band(SUBSCRIPTION, RG, LOCATION, "web-admins", body)

    fetched = await security_aio.jit_network_access_policies.get(RG, LOCATION, "web-admins")
    port = fetched.virtual_machines[0].ports[0]
    assert (port.allowed_source_address_prefix, port.max_request_access_duration) == ("*", "P1D")
    assert await emulator.admin.call_count("JitNetworkAccessPolicies_CreateOrUpdate") == 1


@pytest.mark.usefixtures("web_admins")
async def test_policy_deleted_out_of_band_is_gone_with_its_rules(
    security_aio: SecurityCenter, emulator: EmulatorHandle
) -> None:
    await emulator.admin.delete_policy_out_of_band(SUBSCRIPTION, RG, LOCATION, "web-admins")

    with pytest.raises(ResourceNotFoundError):
        await security_aio.jit_network_access_policies.get(RG, LOCATION, "web-admins")
    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01")
    assert access["guards"][0]["jitDenyRules"] == []


@pytest.mark.usefixtures("web_admins")
async def test_policy_deleted_out_of_band_can_leave_its_rules_behind(
    emulator: EmulatorHandle,
) -> None:
    await emulator.admin.delete_policy_out_of_band(
        SUBSCRIPTION, RG, LOCATION, "web-admins", remove_rules=False
    )

    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01")
    assert len(access["guards"][0]["jitDenyRules"]) == 1


@pytest.mark.usefixtures("web_admins")
async def test_deny_rule_deleted_by_hand_comes_back_when_the_policy_is_put_again(
    security_aio: SecurityCenter, network_aio: NetworkManagementClient, emulator: EmulatorHandle
) -> None:
    await emulator.admin.update_settings(lro_retry_after_seconds=None)
    [deny] = (await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01"))["guards"][0][
        "jitDenyRules"
    ]
    await (
        await network_aio.security_rules.begin_delete(RG, "nsg-vm-web-01", deny["name"])
    ).result()

    await security_aio.jit_network_access_policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)]))
    )

    [restored] = (await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01"))["guards"][0][
        "jitDenyRules"
    ]
    assert restored["name"] == deny["name"]


async def test_large_generated_world_pages_through_every_vm(tmp_path: Path) -> None:
    world = generate_world(vms=600, subscriptions=2, resource_groups_per_subscription=3)
    settings = quick_settings(page_size=100)

    async with run_emulator_in_process(tmp_path, world=world, settings=settings) as handle:
        async with (
            handle.endpoint.async_credential() as credential,
            ComputeManagementClient(
                credential,
                "00000000-0000-0000-0000-000000000002",
                **handle.endpoint.sdk_kwargs(),
            ) as compute,
        ):
            vms = [vm async for vm in compute.virtual_machines.list_all()]
        calls = await handle.admin.calls()

    assert len(vms) == 300
    assert calls["VirtualMachines_ListAll"]["total"] == 3
    assert {vm.tags["env"] for vm in vms} == {"prod", "staging", "dev"}
    assert sum(vm.tags["jit"] == "enabled" for vm in vms) == 150


async def test_generated_world_gives_vms_both_kinds_of_nsg(tmp_path: Path) -> None:
    world = generate_world(vms=10)

    async with run_emulator_in_process(tmp_path, world=world) as handle:
        first = await handle.admin.vm_access(
            "00000000-0000-0000-0000-000000000001", "rg-scale-1", "vm-00000"
        )
        second = await handle.admin.vm_access(
            "00000000-0000-0000-0000-000000000001", "rg-scale-2", "vm-00001"
        )

    assert [g["networkSecurityGroup"].rsplit("/", 1)[1] for g in first["guards"]] == [
        "nsg-snet-guarded"
    ]
    assert [g["networkSecurityGroup"].rsplit("/", 1)[1] for g in second["guards"]] == [
        "nsg-vm-00001"
    ]
