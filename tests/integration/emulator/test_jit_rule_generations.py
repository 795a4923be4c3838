"""The NSG rules JIT writes carry the names and descriptions real NSGs show (E1-E4):
``MicrosoftDefenderForCloud-JITRule…`` / ``MDC JIT …`` today, ``SecurityCenter-JITRule…`` /
``ASC JIT …`` before 2023, and both on one NSG ("mixed"). The admin API's view of a VM's
access finds JIT's rules in every generation."""

from __future__ import annotations

import re

import pytest
from azure.mgmt.network.aio import NetworkManagementClient
from azure.mgmt.network.models import SecurityRule
from azure.mgmt.security.aio import SecurityCenter

from tests.integration.emulator.builders import (
    FAST_POLLING,
    LOCATION,
    RG,
    initiate_request,
    policy,
    port_rule,
)
from tests.support.emulator import SUBSCRIPTION, EmulatorHandle

pytestmark = pytest.mark.integration

INT32 = r"(-?\d{1,10})"
GUID = r"[0-9A-F]{32}"


def _deny(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"{prefix}_{INT32}_{GUID}")


def _allow(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"{prefix}-{INT32}-{GUID}")


CURRENT, LEGACY = "MicrosoftDefenderForCloud-JITRule", "SecurityCenter-JITRule"

# generation -> (deny prefix, deny description tag), (allow prefix, allow description tag)
GENERATIONS = [
    pytest.param(("current", (CURRENT, "MDC"), (CURRENT, "MDC")), id="current: MDC names"),
    pytest.param(("legacy", (LEGACY, "ASC"), (LEGACY, "ASC")), id="legacy: ASC names"),
    pytest.param(
        ("mixed", (LEGACY, "ASC"), (CURRENT, "MDC")), id="mixed: legacy deny, current allow"
    ),
]


async def _open_ssh(security: SecurityCenter) -> None:
    policies = security.jit_network_access_policies
    await policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22), port_rule(3389)]))
    )
    await policies.initiate(
        RG, LOCATION, "web-admins", initiate_request("vm-web-01", (22, "198.51.100.7"))
    )


@pytest.mark.parametrize("case", GENERATIONS)
async def test_jit_rules_are_named_and_described_as_on_real_nsgs(
    emulator: EmulatorHandle,
    security_aio: SecurityCenter,
    network_aio: NetworkManagementClient,
    case: tuple[str, tuple[str, str], tuple[str, str]],
) -> None:
    generation, deny_style, allow_style = case
    await emulator.admin.update_settings(jit_rule_generation=generation)

    await _open_ssh(security_aio)

    rules = [
        r
        async for r in network_aio.security_rules.list(RG, "nsg-vm-web-01")
        if r.name.startswith((CURRENT, LEGACY))
    ]
    [deny] = [r for r in rules if r.access == "Deny"]
    [allow] = [r for r in rules if r.access == "Allow"]
    deny_match = _deny(deny_style[0]).fullmatch(deny.name)
    allow_match = _allow(allow_style[0]).fullmatch(allow.name)
    assert deny_match is not None, deny.name
    assert allow_match is not None, allow.name
    # One VM: the same int32 in its deny and its allow rule (E2).
    assert deny_match[1] == allow_match[1]
    assert -(2**31) <= int(deny_match[1]) < 2**31
    assert deny.description == (
        f"{deny_style[1]} JIT Network Access rule for policy 'web-admins' of VM 'vm-web-01'."
    )
    assert allow.description == (
        f"{allow_style[1]} JIT Network Access rule created by an initiation request for "
        "policy 'web-admins' of VM 'vm-web-01'."
    )


@pytest.mark.parametrize("generation", ["current", "legacy", "mixed"])
async def test_vm_access_finds_jit_rules_of_every_generation(
    emulator: EmulatorHandle, security_aio: SecurityCenter, generation: str
) -> None:
    await emulator.admin.update_settings(jit_rule_generation=generation)

    await _open_ssh(security_aio)

    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01")
    [guard] = access["guards"]
    assert len(guard["jitDenyRules"]) == 1
    assert len(guard["jitAllowRules"]) == 1
    assert [(p["port"], p["sources"]) for p in access["openPorts"]] == [(22, ["198.51.100.7"])]


async def test_a_customer_rule_named_like_jit_is_not_taken_for_jit(
    emulator: EmulatorHandle,
) -> None:
    async with (
        emulator.endpoint.async_credential() as credential,
        NetworkManagementClient(
            credential, SUBSCRIPTION, **emulator.endpoint.sdk_kwargs(**FAST_POLLING)
        ) as network,
    ):
        poller = await network.security_rules.begin_create_or_update(
            RG,
            "nsg-vm-web-01",
            f"{CURRENT}-1-{'A' * 32}",
            SecurityRule(
                protocol="Tcp",
                source_port_range="*",
                destination_port_range="22",
                source_address_prefix="*",
                destination_address_prefix="10.10.1.4",
                access="Allow",
                priority=310,
                direction="Inbound",
            ),
        )
        await poller.result()

    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01")

    assert access["openPorts"] == []
    assert access["guards"][0]["jitAllowRules"] == []


async def test_an_updated_policy_keeps_the_generation_of_its_existing_deny_rule(
    emulator: EmulatorHandle,
    security_aio: SecurityCenter,
    network_aio: NetworkManagementClient,
) -> None:
    policies = security_aio.jit_network_access_policies
    await emulator.admin.update_settings(jit_rule_generation="legacy")
    await policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)]))
    )
    await emulator.admin.update_settings(jit_rule_generation="current")

    await policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22), port_rule(3389)]))
    )

    rules = [
        r
        async for r in network_aio.security_rules.list(RG, "nsg-vm-web-01")
        if r.name.startswith((CURRENT, LEGACY))
    ]
    [deny] = [r for r in rules if r.access == "Deny"]
    assert _deny(LEGACY).fullmatch(deny.name)
    assert sorted(deny.destination_port_ranges) == ["22", "3389"]
