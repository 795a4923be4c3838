"""The operator judges whether a port is open from one consistent read of each NSG.

A paged ``SecurityRules_List`` is not a snapshot: its ``$skiptoken`` is a position, so a
rule deleted from an earlier page while a listing is under way shifts a rule that stays
past the reader, who then believes it is gone. The operator would confirm a close with the
allow rule still there. ``NetworkSecurityGroups_Get`` carries every rule in one response."""

from __future__ import annotations

from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network import models as net

from azure_jit_operator.azure.clients import AzureClients
from azure_jit_operator.azure.network import NetworkAccess
from azure_jit_operator.config import Settings
from tests.integration.emulator.builders import RG
from tests.support.emulator import SUBSCRIPTION, EmulatorEndpoint, EmulatorHandle

NSG = "nsg-vm-web-01"
NSG_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}"
    f"/providers/Microsoft.Network/networkSecurityGroups/{NSG}"
)


def _allow(port: int, priority: int) -> net.SecurityRule:
    return net.SecurityRule(
        protocol="Tcp",
        source_port_range="*",
        destination_port_range=str(port),
        source_address_prefix="203.0.113.7/32",
        destination_address_prefix="*",
        access="Allow",
        priority=priority,
        direction="Inbound",
    )


async def test_a_rule_that_stays_is_seen_even_while_others_are_deleted(
    network: NetworkManagementClient, emulator: EmulatorHandle, emulator_endpoint: EmulatorEndpoint
) -> None:
    await emulator.admin.update_settings(lro_retry_after_seconds=None, page_size=1)
    for priority, port in ((1001, 22), (1002, 3389)):
        network.security_rules.begin_create_or_update(
            RG, NSG, f"jit-{port}", _allow(port, priority)
        ).result()
    # The hazard, as the emulator models ARM: the rule on page 1 goes while a listing is
    # between pages, and the listing never shows jit-22 although it is still there.
    pages = network.security_rules.list(RG, NSG).by_page()
    first = [rule.name for rule in next(pages)]
    network.security_rules.begin_delete(RG, NSG, first[0]).result()
    listed = first + [rule.name for page in pages for rule in page]
    still_there = [
        rule.name for rule in network.network_security_groups.get(RG, NSG).security_rules
    ]
    assert set(still_there) - set(listed) == {"jit-22"}

    await emulator.admin.reset_calls()
    settings = Settings(
        arm_endpoint=emulator_endpoint.base_url, ca_bundle=emulator_endpoint.ca_path
    )
    clients = AzureClients(settings, emulator_endpoint.async_credential())
    try:
        rules = await NetworkAccess(clients).rules(NSG_ID)
    finally:
        await clients.close()

    assert [(r.name, r.destination_ports, r.sources) for r in rules] == [
        ("jit-22", ("22",), ("203.0.113.7/32",)),
        ("jit-3389", ("3389",), ("203.0.113.7/32",)),
    ]
    assert await emulator.admin.call_count("NetworkSecurityGroups_Get") == 1
    assert await emulator.admin.call_count("SecurityRules_List") == 0
