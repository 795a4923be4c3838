"""Microsoft.Compute: virtual machines (Get with ``$expand``, List, ListAll, InstanceView).

The VM shape follows ``VirtualMachine_Get.json`` for the fields clients read: tags (VMs are
selected by tag), ``networkProfile.networkInterfaces`` (how a VM resolves to its NSGs),
``vmId``, hardware/storage/OS profiles and ``provisioningState``. Lists page with ``nextLink``.
"""

from __future__ import annotations

from typing import Any

from azure_arm_emulator import errors
from azure_arm_emulator.arm import (
    COMPUTE_API_VERSIONS,
    ArmRequest,
    ArmResponse,
    Route,
    page,
)
from azure_arm_emulator.model import Vm
from azure_arm_emulator.settings import EmulatorSettings
from azure_arm_emulator.store import Store, in_scope

_RG = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
_VMS = "/providers/Microsoft.Compute/virtualMachines"
_IMAGES = {
    "linux": {
        "publisher": "Canonical",
        "offer": "0001-com-ubuntu-server-jammy",
        "sku": "22_04-lts-gen2",
        "version": "latest",
        "exactVersion": "22.04.202401010",
    },
    "windows": {
        "publisher": "MicrosoftWindowsServer",
        "offer": "WindowsServer",
        "sku": "2022-datacenter-azure-edition",
        "version": "latest",
        "exactVersion": "20348.2227.240104",
    },
}


def _iso_offset(vm: Vm) -> str | None:
    if vm.time_created is None:
        return None
    text = vm.time_created.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{text}0+00:00"


def render_vm(store: Store, vm: Vm, *, expand: str | None = None) -> dict[str, Any]:
    windows = vm.os_type.lower() == "windows"
    os_config: dict[str, Any] = (
        {"windowsConfiguration": {"provisionVMAgent": True, "enableAutomaticUpdates": True}}
        if windows
        else {
            "linuxConfiguration": {
                "disablePasswordAuthentication": True,
                "provisionVMAgent": True,
                "patchSettings": {"patchMode": "ImageDefault", "assessmentMode": "ImageDefault"},
            }
        }
    )
    nic_refs: list[dict[str, Any]] = []
    for index, nic_key in enumerate(vm.nics):
        nic = store.nics.get(nic_key)
        if nic is None:
            continue
        ref: dict[str, Any] = {"id": nic.id}
        if len(vm.nics) > 1:
            ref["properties"] = {"primary": index == 0}
        nic_refs.append(ref)
    disk_id = (
        f"/subscriptions/{vm.subscription}/resourceGroups/{vm.resource_group}"
        f"/providers/Microsoft.Compute/disks/{vm.name}_OsDisk_1"
    )
    props: dict[str, Any] = {
        "vmId": vm.vm_id,
        "hardwareProfile": {"vmSize": vm.size},
        "storageProfile": {
            "imageReference": dict(_IMAGES["windows" if windows else "linux"]),
            "osDisk": {
                "osType": "Windows" if windows else "Linux",
                "name": f"{vm.name}_OsDisk_1",
                "createOption": "FromImage",
                "caching": "ReadWrite",
                "managedDisk": {"storageAccountType": "Premium_LRS", "id": disk_id},
                "deleteOption": "Delete",
                "diskSizeGB": 30,
            },
            "dataDisks": [],
        },
        "osProfile": {
            "computerName": vm.name[:15] if windows else vm.name,
            "adminUsername": vm.admin_username,
            **os_config,
            "secrets": [],
            "allowExtensionOperations": True,
            "requireGuestProvisionSignal": True,
        },
        "securityProfile": {"securityType": "Standard"},
        "networkProfile": {"networkInterfaces": nic_refs},
        "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
        "extensionsTimeBudget": "PT1H30M",
        "provisioningState": "Succeeded",
    }
    created = _iso_offset(vm)
    if created:
        props["timeCreated"] = created
    wanted = {part.strip().lower() for part in (expand or "").split(",") if part.strip()}
    if "userdata" in wanted and vm.user_data is not None:
        props["userData"] = vm.user_data
    if "instanceview" in wanted:
        props["instanceView"] = render_instance_view(vm)
    body: dict[str, Any] = {
        "name": vm.name,
        "id": vm.id,
        "type": "Microsoft.Compute/virtualMachines",
        "location": vm.location,
        "tags": dict(vm.tags),
        "etag": f'"{vm.etag_counter}"',
        "properties": props,
    }
    if vm.zones:
        body["zones"] = list(vm.zones)
    return body


def render_instance_view(vm: Vm) -> dict[str, Any]:
    stamp = _iso_offset(vm)
    status: dict[str, Any] = {
        "code": "ProvisioningState/succeeded",
        "level": "Info",
        "displayStatus": "Provisioning succeeded",
    }
    agent: dict[str, Any] = {
        "code": "ProvisioningState/succeeded",
        "level": "Info",
        "displayStatus": "Ready",
        "message": "GuestAgent is running and accepting new configurations.",
    }
    if stamp:
        status["time"] = stamp
        agent["time"] = stamp
    windows = vm.os_type.lower() == "windows"
    return {
        "computerName": vm.name[:15] if windows else vm.name,
        "osName": "Windows Server 2022 Datacenter" if windows else "ubuntu",
        "osVersion": "Microsoft Windows NT 10.0.20348.0" if windows else "22.04",
        "vmAgent": {
            "vmAgentVersion": "2.10.0.8",
            "statuses": [agent],
        },
        "disks": [
            {
                "name": f"{vm.name}_OsDisk_1",
                "statuses": [dict(status)],
            }
        ],
        "hyperVGeneration": "V2",
        "statuses": [
            status,
            {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"},
        ],
    }


class ComputeApi:
    def __init__(self, store: Store, settings: EmulatorSettings) -> None:
        self.store = store
        self.settings = settings

    def get_vm(self, request: ArmRequest) -> ArmResponse:
        p = request.params
        vm = self.store.require_vm(p["subscriptionId"], p["resourceGroupName"], p["vmName"])
        expand = request.query.get("$expand")
        if expand is not None and not {part.strip().lower() for part in expand.split(",")} <= {
            "userdata",
            "instanceview",
            "resiliencypolicy",
        }:
            raise errors.ArmError(
                400,
                "InvalidParameter",
                f"The value '{expand}' of parameter '$expand' is not valid. Allowed values are "
                "'instanceView', 'userData', 'resiliencyPolicy'.",
                target="$expand",
            )
        return ArmResponse(200, render_vm(self.store, vm, expand=expand))

    def instance_view(self, request: ArmRequest) -> ArmResponse:
        p = request.params
        vm = self.store.require_vm(p["subscriptionId"], p["resourceGroupName"], p["vmName"])
        return ArmResponse(200, render_instance_view(vm))

    def list_vms(self, request: ArmRequest) -> ArmResponse:
        p = request.params
        rg = p.get("resourceGroupName")
        if rg is None:
            self.store.require_subscription(p["subscriptionId"])
        else:
            self.store.require_resource_group(p["subscriptionId"], rg)
        items = [
            render_vm(self.store, vm)
            for vm in in_scope(self.store.vms.values(), p["subscriptionId"], rg)
        ]
        return ArmResponse(200, page(items, request, page_size=self.settings.page_size))

    def routes(self) -> list[Route]:
        v = COMPUTE_API_VERSIONS
        read = "Microsoft.Compute/virtualMachines/read"
        return [
            Route("GET", _RG + _VMS + "/{vmName}", "VirtualMachines_Get", v, read, self.get_vm),
            Route(
                "GET",
                _RG + _VMS + "/{vmName}/instanceView",
                "VirtualMachines_InstanceView",
                v,
                read,
                self.instance_view,
            ),
            Route("GET", _RG + _VMS, "VirtualMachines_List", v, read, self.list_vms),
            Route(
                "GET",
                "/subscriptions/{subscriptionId}" + _VMS,
                "VirtualMachines_ListAll",
                v,
                read,
                self.list_vms,
            ),
        ]
