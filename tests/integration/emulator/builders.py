"""Builders for JIT request/policy models and small lookups shared by the emulator tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.security.v2020_01_01 import models as jit

from tests.support.emulator import SUBSCRIPTION

RG = "rg-web"
LOCATION = "westeurope"
FAST_POLLING = {"polling_interval": 0.05}


def vm_id(name: str, *, rg: str = RG, subscription: str = SUBSCRIPTION) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/{rg}"
        f"/providers/Microsoft.Compute/virtualMachines/{name}"
    )


def port_rule(
    number: int = 22,
    *,
    prefixes: list[str] | None = None,
    prefix: str | None = None,
    max_duration: str = "PT3H",
    protocol: str = "TCP",
) -> jit.JitNetworkAccessPortRule:
    if prefix is None and prefixes is None:
        prefixes = ["198.51.100.0/24"]
    return jit.JitNetworkAccessPortRule(
        number=number,
        protocol=protocol,
        allowed_source_address_prefix=prefix,
        allowed_source_address_prefixes=prefixes,
        max_request_access_duration=max_duration,
    )


def policy(
    *vms: tuple[str, list[jit.JitNetworkAccessPortRule]], rg: str = RG
) -> jit.JitNetworkAccessPolicy:
    return jit.JitNetworkAccessPolicy(
        kind="Basic",
        virtual_machines=[
            jit.JitNetworkAccessPolicyVirtualMachine(id=vm_id(name, rg=rg), ports=ports)
            for name, ports in vms
        ],
    )


def initiate_request(
    vm: str,
    *ports: tuple[int, str],
    end: datetime | None = None,
    justification: str | None = "INC-4711",
) -> jit.JitNetworkAccessPolicyInitiateRequest:
    end_time = end or datetime.now(UTC) + timedelta(hours=1)
    return jit.JitNetworkAccessPolicyInitiateRequest(
        virtual_machines=[
            jit.JitNetworkAccessPolicyInitiateVirtualMachine(
                id=vm_id(vm),
                ports=[
                    jit.JitNetworkAccessPolicyInitiatePort(
                        number=number, allowed_source_address_prefix=source, end_time_utc=end_time
                    )
                    for number, source in ports
                ],
            )
        ],
        justification=justification,
    )


# Both generations of JIT rule names (E1): current first, legacy second.
JIT_RULE_PREFIXES = ("MicrosoftDefenderForCloud-JITRule", "SecurityCenter-JITRule")


def jit_rules(network: NetworkManagementClient, nsg: str, *, access: str) -> list[Any]:
    return [
        rule
        for rule in network.security_rules.list(RG, nsg)
        if rule.name.startswith(JIT_RULE_PREFIXES) and rule.access == access
    ]
