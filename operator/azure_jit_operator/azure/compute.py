"""Listing a resource group's VMs (Microsoft.Compute), for VM selectors. The SDK pager
follows nextLink, so large resource groups cost one call per page."""

from __future__ import annotations

from typing import Any

from azure_jit_operator.azure.clients import AzureClients
from azure_jit_operator.azure.errors import classify
from azure_jit_operator.domain.vm_selection import VmInfo


class ComputeAccess:
    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients

    async def list_vms(self, subscription_id: str, resource_group: str) -> list[VmInfo]:
        ops = self._clients.for_subscription(subscription_id).compute.virtual_machines
        try:
            return [_info(vm.as_dict()) async for vm in ops.list(resource_group)]
        except Exception as exc:
            raise classify(exc) from exc


def _info(vm: dict[str, Any]) -> VmInfo:
    return VmInfo(
        name=str(vm.get("name", "")),
        id=str(vm.get("id", "")),
        location=str(vm.get("location", "")),
        tags={str(k): str(v) for k, v in (vm.get("tags") or {}).items()},
    )
