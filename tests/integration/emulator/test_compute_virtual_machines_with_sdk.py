"""VMs through azure-mgmt-compute: the shape clients read, tag selection, paging, and VMs
that appear, change tags or vanish at runtime."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.aio import ComputeManagementClient as AsyncComputeManagementClient

from tests.integration.emulator.builders import RG
from tests.support.emulator import SUBSCRIPTION, EmulatorEndpoint, EmulatorHandle

pytestmark = pytest.mark.integration


def test_vm_reads_with_the_fields_clients_use(compute: ComputeManagementClient) -> None:
    vm = compute.virtual_machines.get(RG, "vm-web-01")

    assert vm.id == (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-web/providers/"
        "Microsoft.Compute/virtualMachines/vm-web-01"
    )
    assert vm.type == "Microsoft.Compute/virtualMachines"
    assert vm.location == "westeurope"
    assert vm.tags == {"role": "web", "env": "dev", "jit": "enabled"}
    assert vm.provisioning_state == "Succeeded"
    assert vm.vm_id
    assert vm.hardware_profile.vm_size == "Standard_B2s"
    assert vm.storage_profile.os_disk.os_type == "Linux"
    [nic] = vm.network_profile.network_interfaces
    assert nic.id.endswith("/providers/Microsoft.Network/networkInterfaces/vm-web-01-nic")


def test_instance_view_expansion_reports_the_vm_running(compute: ComputeManagementClient) -> None:
    vm = compute.virtual_machines.get(RG, "vm-legacy-01", expand="instanceView")

    codes = [status.code for status in vm.instance_view.statuses]
    assert "PowerState/running" in codes
    assert vm.storage_profile.os_disk.os_type == "Windows"


def test_vm_lists_cover_resource_group_and_subscription(compute: ComputeManagementClient) -> None:
    in_group = {vm.name for vm in compute.virtual_machines.list(RG)}
    everywhere = {vm.name for vm in compute.virtual_machines.list_all()}

    assert in_group == {"vm-web-01", "vm-web-02", "vm-db-01", "vm-app-01", "vm-legacy-01"}
    assert everywhere == in_group | {"vm-ops-01"}


def test_vm_list_pages_with_next_links(
    compute: ComputeManagementClient, emulator_endpoint: EmulatorEndpoint
) -> None:
    admin = emulator_endpoint.sync_admin()
    admin.update_settings(page_size=2)

    names = [vm.name for vm in compute.virtual_machines.list(RG)]

    assert len(names) == 5
    assert admin.call_count("VirtualMachines_List", method="GET") == 3


def test_vms_are_selected_by_tag(compute: ComputeManagementClient) -> None:
    tagged = {
        vm.name
        for vm in compute.virtual_machines.list_all()
        if (vm.tags or {}).get("jit") == "enabled"
    }

    assert tagged == {"vm-web-01", "vm-web-02", "vm-db-01", "vm-ops-01"}


def test_missing_vm_is_not_found_in_arm_words(compute: ComputeManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        compute.virtual_machines.get(RG, "vm-nope")

    assert caught.value.error is not None
    assert caught.value.error.code == "ResourceNotFound"
    assert caught.value.error.message.startswith(
        "The Resource 'Microsoft.Compute/virtualMachines/vm-nope' under resource group 'rg-web'"
    )


def test_missing_resource_group_is_not_found_in_arm_words(
    compute: ComputeManagementClient,
) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        compute.virtual_machines.get("rg-nope", "vm-web-01")

    assert caught.value.error is not None
    assert caught.value.error.code == "ResourceGroupNotFound"


def test_missing_subscription_is_not_found_in_arm_words(
    emulator_endpoint: EmulatorEndpoint,
) -> None:
    with (
        ComputeManagementClient(
            emulator_endpoint.credential(),
            "99999999-9999-9999-9999-999999999999",
            **emulator_endpoint.sdk_kwargs(),
        ) as compute,
        pytest.raises(ResourceNotFoundError) as caught,
    ):
        compute.virtual_machines.get(RG, "vm-web-01")

    assert caught.value.error is not None
    assert caught.value.error.code == "SubscriptionNotFound"


async def test_vm_added_at_runtime_is_listed_and_guarded(
    compute_aio: AsyncComputeManagementClient, emulator: EmulatorHandle
) -> None:
    await emulator.admin.add_vm(
        SUBSCRIPTION,
        RG,
        {
            "name": "vm-web-03",
            "tags": {"role": "web", "jit": "enabled"},
            "subnet": "vnet-web/snet-web",
            "networkSecurityGroup": "nsg-vm-web-02",
        },
    )

    vm = await compute_aio.virtual_machines.get(RG, "vm-web-03")
    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-03")

    assert vm.tags == {"role": "web", "jit": "enabled"}
    assert [g["networkSecurityGroup"].rsplit("/", 1)[1] for g in access["guards"]] == [
        "nsg-vm-web-02"
    ]
    assert access["guards"][0]["addresses"] == ["10.10.1.6"]


async def test_retagged_vm_shows_its_new_tags(
    compute_aio: AsyncComputeManagementClient, emulator: EmulatorHandle
) -> None:
    before = await compute_aio.virtual_machines.get(RG, "vm-web-02")

    await emulator.admin.set_vm_tags(SUBSCRIPTION, RG, "vm-web-02", {"role": "web"})

    after = await compute_aio.virtual_machines.get(RG, "vm-web-02")
    assert after.tags == {"role": "web"}
    assert after.etag != before.etag


async def test_removed_vm_is_gone(
    compute_aio: AsyncComputeManagementClient, emulator: EmulatorHandle
) -> None:
    await emulator.admin.remove_vm(SUBSCRIPTION, RG, "vm-web-02")

    with pytest.raises(ResourceNotFoundError):
        await compute_aio.virtual_machines.get(RG, "vm-web-02")
    names = [vm.name async for vm in compute_aio.virtual_machines.list(RG)]
    assert "vm-web-02" not in names
