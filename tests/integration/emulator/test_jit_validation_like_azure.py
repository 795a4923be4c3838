"""The checks Azure makes on JIT policies and initiate requests, seen through the SDK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.security import SecurityCenter
from azure.mgmt.security.v2020_01_01 import models as jit

from tests.integration.emulator.builders import (
    LOCATION,
    RG,
    initiate_request,
    jit_rules,
    policy,
    port_rule,
    vm_id,
)

pytestmark = pytest.mark.integration


INVALID_POLICIES = [
    pytest.param(
        policy(("vm-web-01", [port_rule(22, max_duration="PT4M")])),
        "properties.virtualMachines[0].ports[0].maxRequestAccessDuration",
        id="a maximum duration under five minutes is refused",
    ),
    pytest.param(
        policy(("vm-web-01", [port_rule(22, max_duration="PT24H1M")])),
        "properties.virtualMachines[0].ports[0].maxRequestAccessDuration",
        id="a maximum duration over one day is refused",
    ),
    pytest.param(
        policy(("vm-web-01", [port_rule(22, max_duration="three hours")])),
        "properties.virtualMachines[0].ports[0].maxRequestAccessDuration",
        id="a maximum duration that is not ISO 8601 is refused",
    ),
    pytest.param(
        policy(("vm-web-01", [port_rule(22, prefix="198.51.100.0/24", prefixes=["*"])])),
        "properties.virtualMachines[0].ports[0].allowedSourceAddressPrefixes",
        id="a single and a list of source prefixes together are refused",
    ),
    pytest.param(
        policy(("vm-web-01", [port_rule(22, prefixes=["198.51.100.1/24"])])),
        "properties.virtualMachines[0].ports[0].allowedSourceAddressPrefixes[0]",
        id="a source prefix with host bits set is refused",
    ),
    pytest.param(
        policy(("vm-web-01", [port_rule(70000)])),
        "properties.virtualMachines[0].ports[0].number",
        id="a port number above 65535 is refused",
    ),
    pytest.param(
        policy(("vm-web-01", [port_rule(22, protocol="ICMP")])),
        "properties.virtualMachines[0].ports[0].protocol",
        id="a protocol other than TCP, UDP or any is refused",
    ),
    pytest.param(
        policy(("vm-web-01", [port_rule(22), port_rule(22)])),
        "properties.virtualMachines[0].ports[1].number",
        id="the same port twice for one VM is refused",
    ),
    pytest.param(
        policy(("vm-web-99", [port_rule(22)])),
        "properties.virtualMachines[0].id",
        id="a VM that does not exist is refused",
    ),
    pytest.param(
        policy(("vm-legacy-01", [port_rule(3389)])),
        "properties.virtualMachines[0].id",
        id="a VM without any network security group is refused",
    ),
]


@pytest.mark.parametrize(("body", "target"), INVALID_POLICIES)
def test_invalid_policy_is_refused_with_the_offending_property(
    security: SecurityCenter,
    network: NetworkManagementClient,
    body: jit.JitNetworkAccessPolicy,
    target: str,
) -> None:
    with pytest.raises(HttpResponseError) as caught:
        security.jit_network_access_policies.create_or_update(RG, LOCATION, "bad", body)

    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "InvalidPolicyInput"
    assert caught.value.error.target == target
    assert list(security.jit_network_access_policies.list()) == []
    assert jit_rules(network, "nsg-vm-web-01", access="Deny") == []


@pytest.mark.parametrize(
    "duration",
    [
        pytest.param("PT5M", id="exactly five minutes is the shortest maximum allowed"),
        pytest.param("P1D", id="exactly one day is the longest maximum allowed"),
    ],
)
def test_boundary_maximum_durations_are_accepted(security: SecurityCenter, duration: str) -> None:
    created = security.jit_network_access_policies.create_or_update(
        RG, LOCATION, "edge", policy(("vm-web-01", [port_rule(22, max_duration=duration)]))
    )

    assert created.virtual_machines[0].ports[0].max_request_access_duration == duration


def test_maximum_duration_comes_back_in_azure_normal_form(security: SecurityCenter) -> None:
    created = security.jit_network_access_policies.create_or_update(
        RG, LOCATION, "norm", policy(("vm-web-01", [port_rule(22, max_duration="PT180M")]))
    )

    assert created.virtual_machines[0].ports[0].max_request_access_duration == "PT3H"


def _web_admins(security: SecurityCenter) -> None:
    security.jit_network_access_policies.create_or_update(
        RG,
        LOCATION,
        "web-admins",
        policy(
            ("vm-web-01", [port_rule(22, prefixes=["198.51.100.0/24", "203.0.113.0/24"])]),
            ("vm-web-02", [port_rule(8443, prefix="203.0.113.0/24", max_duration="PT1H")]),
        ),
    )


def _in(delta: timedelta) -> datetime:
    return datetime.now(UTC) + delta


INVALID_INITIATES = [
    pytest.param(
        initiate_request("vm-web-01", (22, "192.0.2.10")),
        "virtualMachines[0].ports[0].allowedSourceAddressPrefix",
        id="a source outside every allowed prefix is refused",
    ),
    pytest.param(
        initiate_request("vm-web-01", (22, "198.51.0.0/16")),
        "virtualMachines[0].ports[0].allowedSourceAddressPrefix",
        id="a source range wider than the allowed prefix is refused",
    ),
    pytest.param(
        initiate_request("vm-web-01", (3389, "198.51.100.7")),
        "virtualMachines[0].ports[0].number",
        id="a port the policy does not configure for the VM is refused",
    ),
    pytest.param(
        initiate_request("vm-db-01", (22, "198.51.100.7")),
        "virtualMachines[0].id",
        id="a VM that is not in the policy is refused",
    ),
    pytest.param(
        initiate_request("vm-web-02", (8443, "203.0.113.9"), end=_in(timedelta(hours=2))),
        "virtualMachines[0].ports[0].endTimeUtc",
        id="an end beyond the port's maximum duration is refused",
    ),
    pytest.param(
        initiate_request("vm-web-01", (22, "198.51.100.7"), end=_in(-timedelta(minutes=1))),
        "virtualMachines[0].ports[0].endTimeUtc",
        id="an end in the past is refused",
    ),
    pytest.param(
        initiate_request("vm-web-01", (22, "not-an-address")),
        "virtualMachines[0].ports[0].allowedSourceAddressPrefix",
        id="a source that is not an address or range is refused",
    ),
    pytest.param(
        initiate_request("vm-web-01", (22, "198.51.100.7"), (22, "198.51.100.8")),
        "virtualMachines[0].ports[1]",
        id="the same port twice in one request is refused",
    ),
]


@pytest.mark.parametrize(("request_body", "target"), INVALID_INITIATES)
def test_invalid_initiate_is_refused_and_opens_nothing(
    security: SecurityCenter,
    network: NetworkManagementClient,
    request_body: jit.JitNetworkAccessPolicyInitiateRequest,
    target: str,
) -> None:
    _web_admins(security)

    with pytest.raises(HttpResponseError) as caught:
        security.jit_network_access_policies.initiate(RG, LOCATION, "web-admins", request_body)

    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert (caught.value.error.code, caught.value.error.target) == ("InvalidInitiateInput", target)
    assert jit_rules(network, "nsg-vm-web-01", access="Allow") == []
    assert security.jit_network_access_policies.get(RG, LOCATION, "web-admins").requests == []


def test_request_inside_one_of_several_allowed_prefixes_is_accepted(
    security: SecurityCenter,
) -> None:
    _web_admins(security)

    answer = security.jit_network_access_policies.initiate(
        RG, LOCATION, "web-admins", initiate_request("vm-web-01", (22, "203.0.113.0/28"))
    )

    assert answer.virtual_machines[0].ports[0].status == "Initiating"


def test_request_without_a_source_opens_for_the_caller_address(
    security: SecurityCenter, network: NetworkManagementClient
) -> None:
    security.jit_network_access_policies.create_or_update(
        RG, LOCATION, "any-source", policy(("vm-web-01", [port_rule(22, prefix="*")]))
    )
    body = jit.JitNetworkAccessPolicyInitiateRequest(
        virtual_machines=[
            jit.JitNetworkAccessPolicyInitiateVirtualMachine(
                id=vm_id("vm-web-01"),
                ports=[
                    jit.JitNetworkAccessPolicyInitiatePort(
                        number=22, end_time_utc=_in(timedelta(minutes=30))
                    )
                ],
            )
        ]
    )

    answer = security.jit_network_access_policies.initiate(RG, LOCATION, "any-source", body)

    assert answer.virtual_machines[0].ports[0].allowed_source_address_prefix == "127.0.0.1"
    [rule] = jit_rules(network, "nsg-vm-web-01", access="Allow")
    assert rule.source_address_prefix == "127.0.0.1"
