"""An initiate answers at once but takes effect later (E7; how much later is U2): with
``apply_delay_seconds`` the port says Initiating and the NSG has no allow rule until that
much emulator time has passed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from azure.mgmt.security.aio import SecurityCenter

from tests.integration.emulator.builders import LOCATION, RG, initiate_request, policy, port_rule
from tests.support.emulator import SUBSCRIPTION, EmulatorHandle, eventually

pytestmark = pytest.mark.integration


async def _open_ports(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01")
    return list(access["openPorts"])


async def _port_status(security: SecurityCenter) -> str:
    fetched = await security.jit_network_access_policies.get(RG, LOCATION, "web-admins")
    return str(fetched.requests[-1].virtual_machines[0].ports[0].status)


async def test_the_allow_rule_appears_only_after_the_apply_delay(
    emulator: EmulatorHandle, security_aio: SecurityCenter
) -> None:
    await emulator.admin.update_settings(apply_delay_seconds=90)
    policies = security_aio.jit_network_access_policies
    await policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)]))
    )
    now = await emulator.admin.now()
    await policies.initiate(
        RG,
        LOCATION,
        "web-admins",
        initiate_request("vm-web-01", (22, "198.51.100.7"), end=now + timedelta(hours=1)),
    )
    assert await _port_status(security_aio) == "Initiating"
    await emulator.admin.advance_clock(timedelta(seconds=60))
    await emulator.admin.tick()
    assert await _open_ports(emulator) == []
    assert await _port_status(security_aio) == "Initiating"

    await emulator.admin.advance_clock(timedelta(seconds=31))

    async def applied() -> bool:
        return len(await _open_ports(emulator)) == 1

    await eventually(applied, within=5, what="allow rule applied after the delay")
    assert await _port_status(security_aio) == "Initiated"
