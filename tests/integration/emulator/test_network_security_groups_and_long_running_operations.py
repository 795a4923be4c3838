"""NSGs and security rules through azure-mgmt-network: reads, paging, and writes that run as
real long-running operations the SDK pollers have to follow."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network import models as net
from azure.mgmt.network.aio import NetworkManagementClient as AsyncNetworkManagementClient

from azure_jit_devtools.localcluster.processes import wait_for
from tests.integration.emulator.builders import RG
from tests.integration.emulator.raw_arm import arm_call
from tests.support.emulator import EmulatorEndpoint, EmulatorHandle

pytestmark = pytest.mark.integration


def _rule(priority: int = 200, port: str = "8080") -> net.SecurityRule:
    return net.SecurityRule(
        protocol="Tcp",
        source_port_range="*",
        destination_port_range=port,
        source_address_prefix="10.0.0.0/8",
        destination_address_prefix="*",
        access="Allow",
        priority=priority,
        direction="Inbound",
    )


def test_nsg_shows_its_rules_defaults_and_attachments(network: NetworkManagementClient) -> None:
    nsg = network.network_security_groups.get(RG, "nsg-vm-web-01")

    assert nsg.type == "Microsoft.Network/networkSecurityGroups"
    assert nsg.provisioning_state == "Succeeded"
    assert [r.name for r in nsg.security_rules] == ["allow-https-inbound"]
    assert len(nsg.default_security_rules) == 6
    assert [n.id.rsplit("/", 1)[1] for n in nsg.network_interfaces] == ["vm-web-01-nic"]
    subnet_nsg = network.network_security_groups.get(RG, "nsg-snet-db")
    assert [s.id.rsplit("/", 1)[1] for s in subnet_nsg.subnets] == ["snet-db"]


def test_nsg_lists_cover_resource_group_and_subscription(network: NetworkManagementClient) -> None:
    in_group = {n.name for n in network.network_security_groups.list(RG)}
    everywhere = {n.name for n in network.network_security_groups.list_all()}

    assert in_group == {
        "nsg-vm-web-01",
        "nsg-vm-web-02",
        "nsg-snet-db",
        "nsg-snet-app",
        "nsg-vm-app-01",
    }
    assert everywhere == in_group | {"nsg-vm-ops-01"}


def test_lists_follow_next_links_page_by_page(
    network: NetworkManagementClient, emulator_endpoint: EmulatorEndpoint
) -> None:
    admin = emulator_endpoint.sync_admin()
    admin.update_settings(page_size=2)

    pages = list(network.network_security_groups.list(RG).by_page())

    assert [len(list(page)) for page in pages] == [2, 2, 1]
    assert admin.call_count("NetworkSecurityGroups_List") == 3


def test_rule_delete_is_a_long_running_operation_followed_to_the_end(
    network: NetworkManagementClient, emulator_endpoint: EmulatorEndpoint
) -> None:
    admin = emulator_endpoint.sync_admin()
    admin.update_settings(lro_in_progress_polls=2, lro_retry_after_seconds=None)

    poller = network.security_rules.begin_delete(RG, "nsg-vm-web-01", "allow-https-inbound")
    during = network.security_rules.get(RG, "nsg-vm-web-01", "allow-https-inbound")
    poller.result()

    assert during.provisioning_state == "Deleting"
    with pytest.raises(ResourceNotFoundError) as caught:
        network.security_rules.get(RG, "nsg-vm-web-01", "allow-https-inbound")
    assert caught.value.error is not None
    assert caught.value.error.code == "NotFound"
    calls = admin.calls()
    assert calls["SecurityRules_Delete"]["by_status"] == {"202": 1}
    assert calls["AzureAsyncOperation_Get"]["by_status"] == {"200": 3}


def test_rule_create_answers_created_and_settles_to_succeeded(
    network: NetworkManagementClient, emulator_endpoint: EmulatorEndpoint
) -> None:
    emulator_endpoint.sync_admin().update_settings(lro_retry_after_seconds=None)

    created = network.security_rules.begin_create_or_update(
        RG, "nsg-vm-web-02", "allow-8080", _rule()
    ).result()
    updated = network.security_rules.begin_create_or_update(
        RG, "nsg-vm-web-02", "allow-8080", _rule(port="8081")
    ).result()

    assert created.provisioning_state == "Succeeded"
    assert updated.destination_port_range == "8081"
    statuses = emulator_endpoint.sync_admin().calls()["SecurityRules_CreateOrUpdate"]["by_status"]
    assert statuses == {"201": 1, "200": 1}


def test_poller_waits_as_long_as_retry_after_says(
    network: NetworkManagementClient, emulator_endpoint: EmulatorEndpoint
) -> None:
    emulator_endpoint.sync_admin().update_settings(lro_retry_after_seconds=1)

    started = time.monotonic()
    network.security_rules.begin_delete(RG, "nsg-vm-web-01", "allow-https-inbound").result()

    assert time.monotonic() - started >= 1.0


def test_unpolled_operation_still_completes_in_the_background(
    network: NetworkManagementClient, emulator_endpoint: EmulatorEndpoint
) -> None:
    admin = emulator_endpoint.sync_admin()
    admin.update_settings(lro_background_seconds=0.2, lro_in_progress_polls=100)
    network.security_rules.begin_delete(RG, "nsg-vm-web-01", "allow-https-inbound")

    def gone() -> bool:
        return not admin.state()["pendingOperations"]

    wait_for(gone, timeout=5, what="background completion")
    names = [r.name for r in network.security_rules.list(RG, "nsg-vm-web-01")]
    assert "allow-https-inbound" not in names


def test_deleting_a_missing_rule_is_no_content(
    network: NetworkManagementClient, emulator_endpoint: EmulatorEndpoint
) -> None:
    network.security_rules.begin_delete(RG, "nsg-vm-web-01", "never-existed").result()

    statuses = emulator_endpoint.sync_admin().calls()["SecurityRules_Delete"]["by_status"]
    assert statuses == {"204": 1}


def test_rule_with_a_taken_priority_conflicts(network: NetworkManagementClient) -> None:
    with pytest.raises(HttpResponseError) as caught:
        network.security_rules.begin_create_or_update(
            RG, "nsg-vm-web-01", "clash", _rule(priority=300)
        )

    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "SecurityRuleConflict"


def test_rule_priority_outside_the_range_is_refused(network: NetworkManagementClient) -> None:
    with pytest.raises(HttpResponseError) as caught:
        network.security_rules.begin_create_or_update(RG, "nsg-vm-web-01", "low", _rule(99))

    assert caught.value.error is not None
    assert caught.value.error.code == "SecurityRuleInvalidPriority"


def test_rule_in_a_missing_nsg_names_the_missing_parent(network: NetworkManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        network.security_rules.get(RG, "nsg-nope", "rule")

    assert caught.value.error is not None
    assert caught.value.error.code == "ParentResourceNotFound"


def test_nic_and_subnet_lead_from_a_vm_to_its_nsgs(network: NetworkManagementClient) -> None:
    nic = network.network_interfaces.get(RG, "vm-app-01-nic")
    subnet_id = nic.ip_configurations[0].subnet.id
    vnet, subnet_name = subnet_id.split("/")[-3], subnet_id.split("/")[-1]
    subnet = network.subnets.get(RG, vnet, subnet_name)

    assert nic.network_security_group.id.endswith("/nsg-vm-app-01")
    assert nic.ip_configurations[0].private_ip_address == "10.10.3.4"
    assert nic.virtual_machine.id.endswith("/virtualMachines/vm-app-01")
    assert subnet.network_security_group.id.endswith("/nsg-snet-app")
    assert subnet.address_prefix == "10.10.3.0/24"


def test_nsg_in_use_cannot_be_deleted(network: NetworkManagementClient) -> None:
    with pytest.raises(HttpResponseError) as caught:
        network.network_security_groups.begin_delete(RG, "nsg-vm-web-01")

    assert caught.value.error is not None
    assert caught.value.error.code == "InUseNetworkSecurityGroupCannotBeDeleted"


async def test_async_poller_follows_the_rule_delete_too(
    network_aio: AsyncNetworkManagementClient, emulator: EmulatorHandle
) -> None:
    await emulator.admin.update_settings(lro_retry_after_seconds=None)

    poller = await network_aio.security_rules.begin_delete(
        RG, "nsg-vm-web-01", "allow-https-inbound"
    )
    await poller.result()

    names = [r.name async for r in network_aio.security_rules.list(RG, "nsg-vm-web-01")]
    assert names == []
    assert poller.status() == "Succeeded"


async def test_async_nsg_create_and_delete_round_trip(
    network_aio: AsyncNetworkManagementClient, emulator: EmulatorHandle
) -> None:
    await emulator.admin.update_settings(lro_retry_after_seconds=None)
    body = net.NetworkSecurityGroup(location="westeurope", security_rules=[])
    body.security_rules.append(net.SecurityRule(name="r1", **_rule().as_dict()))

    created = await (
        await network_aio.network_security_groups.begin_create_or_update(RG, "nsg-new", body)
    ).result()
    await (await network_aio.network_security_groups.begin_delete(RG, "nsg-new")).result()

    assert created.provisioning_state == "Succeeded"
    assert [r.name for r in created.security_rules] == ["r1"]
    with pytest.raises(ResourceNotFoundError):
        await network_aio.network_security_groups.get(RG, "nsg-new")


async def test_location_header_answers_accepted_until_done_then_no_content(
    emulator: EmulatorHandle,
) -> None:
    await emulator.admin.update_settings(lro_in_progress_polls=1)
    rule = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-web/providers/"
        "Microsoft.Network/networkSecurityGroups/nsg-vm-web-01/securityRules/allow-https-inbound"
    )
    started = await arm_call(emulator.endpoint, "DELETE", rule, api_version="2026-03-01")
    location = started.headers["Location"].removeprefix(emulator.endpoint.base_url)
    path, _, query = location.partition("?")

    running = await arm_call(emulator.endpoint, "GET", path, api_version=query.split("=")[1])
    done = await arm_call(emulator.endpoint, "GET", path, api_version=query.split("=")[1])

    assert started.status == 202
    assert started.headers["Retry-After"] == "1"
    assert started.headers["Azure-AsyncOperation"].startswith(emulator.endpoint.base_url)
    assert (running.status, done.status) == (202, 204)
