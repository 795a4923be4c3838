"""Azure's revoke at endTimeUtc, driven by the emulator clock: jumps, lag, never-revoke,
and the client's own forced close through the network API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from azure.mgmt.network.aio import NetworkManagementClient
from azure.mgmt.security.aio import SecurityCenter

from tests.integration.emulator.builders import LOCATION, RG, initiate_request, policy, port_rule
from tests.support.emulator import SUBSCRIPTION, EmulatorHandle, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def open_ssh(security_aio: SecurityCenter, emulator: EmulatorHandle) -> None:
    """web-admins with SSH on vm-web-01 open for one hour from 198.51.100.7."""
    policies = security_aio.jit_network_access_policies
    await policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22), port_rule(3389)]))
    )
    now = await emulator.admin.now()
    await policies.initiate(
        RG,
        LOCATION,
        "web-admins",
        initiate_request("vm-web-01", (22, "198.51.100.7"), end=now + timedelta(hours=1)),
    )


async def _open_ports(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01")
    return list(access["openPorts"])


async def _port_state(security: SecurityCenter, index: int = 0) -> tuple[str, str]:
    fetched = await security.jit_network_access_policies.get(RG, LOCATION, "web-admins")
    port = fetched.requests[index].virtual_machines[0].ports[0]
    return port.status, port.status_reason


@pytest.mark.usefixtures("open_ssh")
async def test_jumping_past_the_end_removes_the_allow_rule_promptly(
    emulator: EmulatorHandle, security_aio: SecurityCenter
) -> None:
    assert len(await _open_ports(emulator)) == 1

    await emulator.admin.advance_clock(timedelta(hours=1, seconds=1))

    async def closed() -> bool:
        return await _open_ports(emulator) == []

    await eventually(closed, within=3, what="allow rule removed after the clock jump")
    assert await _port_state(security_aio) == ("Revoked", "Expired")


@pytest.mark.usefixtures("open_ssh")
async def test_expiry_keeps_the_policy_deny_rule(emulator: EmulatorHandle) -> None:
    await emulator.admin.advance_clock(timedelta(hours=2))

    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01")

    [guard] = access["guards"]
    assert len(guard["jitDenyRules"]) == 1
    assert guard["jitAllowRules"] == []


@pytest.mark.usefixtures("open_ssh")
async def test_time_before_the_end_leaves_the_port_open(
    emulator: EmulatorHandle, security_aio: SecurityCenter
) -> None:
    await emulator.admin.advance_clock(timedelta(minutes=59))
    await emulator.admin.tick()

    assert len(await _open_ports(emulator)) == 1
    assert await _port_state(security_aio) == ("Initiated", "UserRequested")


@pytest.mark.usefixtures("open_ssh")
async def test_azure_side_lag_delays_the_revoke(
    emulator: EmulatorHandle, security_aio: SecurityCenter
) -> None:
    await emulator.admin.update_settings(revoke_lag_seconds=600)

    await emulator.admin.advance_clock(timedelta(hours=1, minutes=5))
    await emulator.admin.tick()
    still_open = await _open_ports(emulator)
    await emulator.admin.advance_clock(timedelta(minutes=6))

    assert len(still_open) == 1

    async def closed() -> bool:
        return await _open_ports(emulator) == []

    await eventually(closed, within=3, what="allow rule removed after the lag")
    assert await _port_state(security_aio) == ("Revoked", "Expired")


@pytest.mark.usefixtures("open_ssh")
async def test_never_revoke_leaves_the_port_open_past_its_end(
    emulator: EmulatorHandle, security_aio: SecurityCenter
) -> None:
    await emulator.admin.update_settings(never_revoke=True)

    await emulator.admin.advance_clock(timedelta(hours=3))
    await emulator.admin.tick()

    assert len(await _open_ports(emulator)) == 1
    assert await _port_state(security_aio) == ("Initiated", "UserRequested")


@pytest.mark.usefixtures("open_ssh")
async def test_client_can_force_close_through_the_network_api(
    emulator: EmulatorHandle, network_aio: NetworkManagementClient
) -> None:
    await emulator.admin.update_settings(never_revoke=True)
    await emulator.admin.advance_clock(timedelta(hours=3))
    [port] = await _open_ports(emulator)
    nsg = port["networkSecurityGroup"].rsplit("/", 1)[1]

    poller = await network_aio.security_rules.begin_delete(RG, nsg, port["rule"])
    await poller.result()

    assert await _open_ports(emulator) == []
    assert await emulator.admin.call_count("SecurityRules_Delete", method="DELETE") == 1


@pytest.mark.usefixtures("open_ssh")
async def test_switching_revoke_back_on_closes_what_is_overdue(emulator: EmulatorHandle) -> None:
    await emulator.admin.update_settings(never_revoke=True)
    await emulator.admin.advance_clock(timedelta(hours=3))

    await emulator.admin.update_settings(never_revoke=False)

    async def closed() -> bool:
        return await _open_ports(emulator) == []

    await eventually(closed, within=3, what="overdue allow rule removed")


async def test_only_requests_past_their_end_expire(
    emulator: EmulatorHandle, security_aio: SecurityCenter
) -> None:
    policies = security_aio.jit_network_access_policies
    await policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22), port_rule(3389)]))
    )
    now = await emulator.admin.now()
    await policies.initiate(
        RG,
        LOCATION,
        "web-admins",
        initiate_request("vm-web-01", (22, "198.51.100.7"), end=now + timedelta(minutes=30)),
    )
    await policies.initiate(
        RG,
        LOCATION,
        "web-admins",
        initiate_request("vm-web-01", (3389, "198.51.100.7"), end=now + timedelta(hours=2)),
    )

    await emulator.admin.advance_clock(timedelta(hours=1))

    async def only_rdp_open() -> bool:
        return [p["port"] for p in await _open_ports(emulator)] == [3389]

    await eventually(only_rdp_open, within=3, what="SSH closed while RDP stays open")
    assert await _port_state(security_aio, 0) == ("Revoked", "Expired")
    assert await _port_state(security_aio, 1) == ("Initiated", "UserRequested")


@pytest.mark.usefixtures("open_ssh")
async def test_deleting_the_policy_closes_open_ports(
    emulator: EmulatorHandle, security_aio: SecurityCenter
) -> None:
    await security_aio.jit_network_access_policies.delete(RG, LOCATION, "web-admins")

    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01")

    assert access["openPorts"] == []
    assert access["guards"][0]["jitDenyRules"] == []


async def test_background_task_revokes_at_the_end_without_any_clock_change(
    emulator: EmulatorHandle, security_aio: SecurityCenter
) -> None:
    policies = security_aio.jit_network_access_policies
    await policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)]))
    )
    now = await emulator.admin.now()
    await policies.initiate(
        RG,
        LOCATION,
        "web-admins",
        initiate_request("vm-web-01", (22, "198.51.100.7"), end=now + timedelta(seconds=1)),
    )
    assert len(await _open_ports(emulator)) == 1

    async def closed() -> bool:
        return await _open_ports(emulator) == []

    await eventually(closed, within=5, what="allow rule removed by the background task")
    assert await _port_state(security_aio) == ("Revoked", "Expired")
