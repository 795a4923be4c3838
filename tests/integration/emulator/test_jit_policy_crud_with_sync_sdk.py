"""JIT policy create/get/list/update/delete through the synchronous azure-mgmt-security client,
and what each step does to the NSGs guarding the VMs."""

from __future__ import annotations

import re

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.security import SecurityCenter

from tests.integration.emulator.builders import (
    LOCATION,
    RG,
    jit_rules,
    policy,
    port_rule,
    vm_id,
)
from tests.support.emulator import EmulatorEndpoint

pytestmark = pytest.mark.integration


def test_created_policy_reads_back_as_azure_returns_it(security: SecurityCenter) -> None:
    created = security.jit_network_access_policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)]))
    )
    fetched = security.jit_network_access_policies.get(RG, LOCATION, "web-admins")

    assert created.provisioning_state == "Succeeded"
    assert fetched.id == (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-web/providers/"
        "Microsoft.Security/locations/westeurope/jitNetworkAccessPolicies/web-admins"
    )
    assert fetched.type == "Microsoft.Security/locations/jitNetworkAccessPolicies"
    assert fetched.kind == "Basic"
    assert fetched.location == LOCATION
    port = fetched.virtual_machines[0].ports[0]
    assert (port.number, port.protocol, port.max_request_access_duration) == (22, "TCP", "PT3H")
    assert port.allowed_source_address_prefixes == ["198.51.100.0/24"]
    assert fetched.requests == []


def test_policy_puts_a_low_precedence_deny_rule_on_the_vm_nic_nsg(
    security: SecurityCenter, network: NetworkManagementClient
) -> None:
    security.jit_network_access_policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22), port_rule(3389)]))
    )

    [deny] = jit_rules(network, "nsg-vm-web-01", access="Deny")
    assert re.fullmatch(r"MicrosoftDefenderForCloud-JITRule_-?\d+_[0-9A-F]{32}", deny.name)
    assert deny.description.startswith("MDC JIT Network Access rule ")
    assert deny.priority == 4096
    assert deny.direction == "Inbound"
    assert sorted(deny.destination_port_ranges) == ["22", "3389"]
    assert deny.destination_address_prefix == "10.10.1.4"
    assert deny.source_address_prefix == "*"
    assert "policy 'web-admins' of VM 'vm-web-01'" in deny.description


def test_vm_behind_a_subnet_nsg_gets_its_deny_rule_on_the_subnet_nsg(
    security: SecurityCenter, network: NetworkManagementClient
) -> None:
    security.jit_network_access_policies.create_or_update(
        RG, LOCATION, "db-admins", policy(("vm-db-01", [port_rule(5432)]))
    )

    [deny] = jit_rules(network, "nsg-snet-db", access="Deny")
    assert deny.destination_port_range == "5432"
    assert deny.destination_address_prefix == "10.10.2.4"


def test_vm_with_nic_and_subnet_nsgs_gets_deny_rules_on_both(
    security: SecurityCenter, network: NetworkManagementClient
) -> None:
    security.jit_network_access_policies.create_or_update(
        RG, LOCATION, "app-admins", policy(("vm-app-01", [port_rule(22)]))
    )

    assert len(jit_rules(network, "nsg-vm-app-01", access="Deny")) == 1
    assert len(jit_rules(network, "nsg-snet-app", access="Deny")) == 1


def test_updating_a_policy_moves_its_deny_rules_with_it(
    security: SecurityCenter, network: NetworkManagementClient
) -> None:
    policies = security.jit_network_access_policies
    policies.create_or_update(RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)])))
    [before] = jit_rules(network, "nsg-vm-web-01", access="Deny")

    policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-02", [port_rule(22), port_rule(8443)]))
    )

    assert jit_rules(network, "nsg-vm-web-01", access="Deny") == []
    [after] = jit_rules(network, "nsg-vm-web-02", access="Deny")
    assert after.name != before.name
    assert sorted(after.destination_port_ranges) == ["22", "8443"]


def test_unchanged_policy_keeps_its_deny_rule_names(
    security: SecurityCenter, network: NetworkManagementClient
) -> None:
    policies = security.jit_network_access_policies
    body = policy(("vm-web-01", [port_rule(22)]))
    policies.create_or_update(RG, LOCATION, "web-admins", body)
    [first] = jit_rules(network, "nsg-vm-web-01", access="Deny")

    policies.create_or_update(RG, LOCATION, "web-admins", body)

    [second] = jit_rules(network, "nsg-vm-web-01", access="Deny")
    assert (second.name, second.priority, second.etag) == (first.name, first.priority, first.etag)


def test_every_list_operation_finds_the_policy_in_its_scope(security: SecurityCenter) -> None:
    policies = security.jit_network_access_policies
    policies.create_or_update(RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)])))
    policies.create_or_update(
        "rg-ops", "northeurope", "ops-admins", policy(("vm-ops-01", [port_rule(22)]), rg="rg-ops")
    )

    assert {p.name for p in policies.list()} == {"web-admins", "ops-admins"}
    assert {p.name for p in policies.list_by_region(LOCATION)} == {"web-admins"}
    assert {p.name for p in policies.list_by_resource_group("rg-ops")} == {"ops-admins"}
    assert {p.name for p in policies.list_by_resource_group_and_region(RG, LOCATION)} == {
        "web-admins"
    }
    assert list(policies.list_by_resource_group_and_region(RG, "northeurope")) == []


def test_deleting_a_policy_removes_it_and_its_rules(
    security: SecurityCenter, network: NetworkManagementClient
) -> None:
    policies = security.jit_network_access_policies
    policies.create_or_update(RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)])))

    policies.delete(RG, LOCATION, "web-admins")

    with pytest.raises(ResourceNotFoundError):
        policies.get(RG, LOCATION, "web-admins")
    assert jit_rules(network, "nsg-vm-web-01", access="Deny") == []
    assert [r.name for r in network.security_rules.list(RG, "nsg-vm-web-01")] == [
        "allow-https-inbound"
    ]


def test_deleting_a_missing_policy_succeeds_as_no_content(security: SecurityCenter) -> None:
    statuses: list[int] = []

    security.jit_network_access_policies.delete(
        RG,
        LOCATION,
        "never-created",
        cls=lambda response, *_: statuses.append(response.http_response.status_code),
    )

    assert statuses == [204]


def test_policy_for_vm_ids_in_other_spelling_still_finds_the_vm(
    security: SecurityCenter, network: NetworkManagementClient
) -> None:
    shouted = vm_id("VM-WEB-01").replace("resourceGroups/rg-web", "RESOURCEGROUPS/RG-WEB")
    body = policy(("vm-web-01", [port_rule(22)]))
    body.virtual_machines[0].id = shouted

    created = security.jit_network_access_policies.create_or_update(
        RG, LOCATION, "web-admins", body
    )

    assert created.virtual_machines[0].id == shouted
    assert len(jit_rules(network, "nsg-vm-web-01", access="Deny")) == 1


def test_policy_lists_follow_next_links_page_by_page(
    security: SecurityCenter, emulator_endpoint: EmulatorEndpoint
) -> None:
    admin = emulator_endpoint.sync_admin()
    admin.update_settings(page_size=1)
    for name in ("a", "b", "c"):
        security.jit_network_access_policies.create_or_update(
            RG, LOCATION, name, policy(("vm-web-01", [port_rule(22)]))
        )

    names = [p.name for p in security.jit_network_access_policies.list_by_resource_group(RG)]

    assert names == ["a", "b", "c"]
    assert admin.call_count("JitNetworkAccessPolicies_ListByResourceGroup") == 3
