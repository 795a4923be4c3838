"""Routine checks (a VM's verification, a policy's exposure check) share one read of an NSG
per drift interval, through the real SDK against the emulator, and only while no write could
have changed what they look at: any write of the identity's clients (an initiate, a rule
DELETE) makes a verification read anew; a JIT policy write (deny rules change) makes the
exposure check, which leaves JIT's allow rules out, read anew. A close always reads anew."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from azure_jit_operator.azure.access import AzureAccess
from azure_jit_operator.azure.clients import AzureClients
from azure_jit_operator.config import Settings
from azure_jit_operator.domain.azure_policy import desired_policy
from azure_jit_operator.domain.specs import parse_policy_spec
from tests.integration.emulator.builders import RG
from tests.support.emulator import SUBSCRIPTION, EmulatorEndpoint, EmulatorHandle
from tests.support.manifests import policy_spec, port_rule

NSG = "nsg-vm-web-01"
NSG_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}"
    f"/providers/Microsoft.Network/networkSecurityGroups/{NSG}"
)
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SHARE = timedelta(seconds=60)
GETS = "NetworkSecurityGroups_Get"


@pytest.fixture
async def access(emulator_endpoint: EmulatorEndpoint) -> AsyncIterator[AzureAccess]:
    settings = Settings(
        arm_endpoint=emulator_endpoint.base_url, ca_bundle=emulator_endpoint.ca_path
    )
    az = AzureAccess(AzureClients(settings, emulator_endpoint.async_credential()), key="test")
    try:
        yield az
    finally:
        await az.close()


async def _gets(emulator: EmulatorHandle) -> int:
    return await emulator.admin.call_count(GETS)


async def test_routine_reads_are_shared_within_their_age_and_closes_read_anew(
    access: AzureAccess, emulator: EmulatorHandle
) -> None:
    await emulator.admin.reset_calls()
    await access.nsg_rules(NSG_ID, now=T0, max_age=SHARE)
    await access.nsg_rules(NSG_ID, now=T0 + timedelta(seconds=30), max_age=SHARE)
    await access.nsg_rules(
        NSG_ID, now=T0 + timedelta(seconds=40), max_age=SHARE, deny_rules_only=True
    )
    assert await _gets(emulator) == 1
    await access.nsg_rules(NSG_ID, now=T0 + timedelta(seconds=40))  # a close
    assert await _gets(emulator) == 2
    await access.nsg_rules(NSG_ID, now=T0 + timedelta(seconds=200), max_age=SHARE)
    assert await _gets(emulator) == 3, "an older read than the age allows is not shared"


async def test_a_write_makes_verifications_read_anew_and_a_policy_write_exposure_checks_too(
    access: AzureAccess, emulator: EmulatorHandle
) -> None:
    await emulator.admin.reset_calls()
    await access.nsg_rules(NSG_ID, now=T0, max_age=SHARE)
    # A rule DELETE by the operator's clients (closing a grant) changes allow rules.
    await access.network.delete_rule(NSG_ID, "allow-https-inbound")
    rules = await access.nsg_rules(NSG_ID, now=T0, max_age=SHARE)
    assert "allow-https-inbound" not in {r.name for r in rules}
    assert await _gets(emulator) == 2
    # The exposure check minds deny rules only: that DELETE does not stop it sharing.
    await access.nsg_rules(NSG_ID, now=T0, max_age=SHARE, deny_rules_only=True)
    assert await _gets(emulator) == 2
    # A JIT policy write may change deny rules: both read anew.
    spec = parse_policy_spec(policy_spec(vms={"vm-web-01": [port_rule(22)]}), name="web-admins")
    await access.jit.put(spec.azure, desired_policy(spec))
    await access.nsg_rules(NSG_ID, now=T0, max_age=SHARE, deny_rules_only=True)
    assert await _gets(emulator) == 3
    await access.nsg_rules(NSG_ID, now=T0, max_age=SHARE)
    assert await _gets(emulator) == 3, "the exposure check's fresh read is shared again"
