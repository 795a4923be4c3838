"""Injected faults as the SDK's own retry policy experiences them, call counting, and
403 AuthorizationFailed for tokens whose scope does not cover the call."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.security import SecurityCenter
from azure.mgmt.security.aio import SecurityCenter as AsyncSecurityCenter

from tests.integration.emulator.builders import (
    LOCATION,
    RG,
    initiate_request,
    jit_rules,
    policy,
    port_rule,
)
from tests.support.emulator import SUBSCRIPTION, EmulatorEndpoint, EmulatorHandle

pytestmark = pytest.mark.integration


def test_throttled_call_is_retried_after_retry_after_and_succeeds(
    compute: ComputeManagementClient, emulator_endpoint: EmulatorEndpoint
) -> None:
    admin = emulator_endpoint.sync_admin()
    admin.add_fault("VirtualMachines_Get", status=429, retry_after=1, times=2)

    started = time.monotonic()
    vm = compute.virtual_machines.get(RG, "vm-web-01")

    assert vm.name == "vm-web-01"
    assert time.monotonic() - started >= 2.0
    assert admin.calls()["VirtualMachines_Get"]["by_status"] == {"429": 2, "200": 1}


def test_throttling_answer_has_arm_shape(
    compute: ComputeManagementClient, emulator_endpoint: EmulatorEndpoint
) -> None:
    emulator_endpoint.sync_admin().add_fault(
        "VirtualMachines_Get", status=429, retry_after=0, times=None
    )

    with pytest.raises(HttpResponseError) as caught:
        compute.virtual_machines.get(RG, "vm-web-01", retry_total=0)

    assert caught.value.status_code == 429
    assert caught.value.error is not None
    assert caught.value.error.code == "SubscriptionRequestsThrottled"
    assert caught.value.response.headers["Retry-After"] == "0"


def test_server_errors_on_reads_are_retried_by_the_sdk(
    network: NetworkManagementClient, emulator_endpoint: EmulatorEndpoint
) -> None:
    admin = emulator_endpoint.sync_admin()
    admin.add_fault("NetworkSecurityGroups_Get", status=503, retry_after=0, times=1)
    admin.add_fault("NetworkSecurityGroups_Get", status=500, times=1)

    nsg = network.network_security_groups.get(RG, "nsg-vm-web-01", retry_backoff_factor=0.01)

    assert nsg.name == "nsg-vm-web-01"
    assert admin.calls()["NetworkSecurityGroups_Get"]["by_status"] == {
        "503": 1,
        "500": 1,
        "200": 1,
    }


def test_dropped_connection_surfaces_as_a_transport_error(
    network: NetworkManagementClient, emulator_endpoint: EmulatorEndpoint
) -> None:
    admin = emulator_endpoint.sync_admin()
    admin.add_fault("SecurityRules_List", kind="drop", times=None)

    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        list(network.security_rules.list(RG, "nsg-vm-web-01", retry_total=1))

    assert admin.calls()["SecurityRules_List"]["by_status"] == {"dropped": 2}


def test_dropped_connection_once_is_survived_by_a_retry(
    network: NetworkManagementClient, emulator_endpoint: EmulatorEndpoint
) -> None:
    emulator_endpoint.sync_admin().add_fault("SecurityRules_List", kind="drop", times=1)

    names = [r.name for r in network.security_rules.list(RG, "nsg-vm-web-01")]

    assert names == ["allow-https-inbound"]


def test_latency_fault_slows_only_its_operation(
    network: NetworkManagementClient, emulator_endpoint: EmulatorEndpoint
) -> None:
    emulator_endpoint.sync_admin().add_fault(
        "NetworkSecurityGroups_Get", kind="latency", latency_seconds=0.5, times=None
    )

    started = time.monotonic()
    network.network_security_groups.get(RG, "nsg-vm-web-01")
    slow = time.monotonic() - started
    started = time.monotonic()
    list(network.security_rules.list(RG, "nsg-vm-web-01"))
    fast = time.monotonic() - started

    assert slow >= 0.5
    assert fast < slow - 0.25


async def test_lost_initiate_response_still_opened_the_port(
    security_aio: AsyncSecurityCenter, emulator: EmulatorHandle
) -> None:
    policies = security_aio.jit_network_access_policies
    await policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)]))
    )
    await emulator.admin.add_fault(
        "JitNetworkAccessPolicies_Initiate", kind="drop", phase="after", times=1
    )

    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        await policies.initiate(
            RG, LOCATION, "web-admins", initiate_request("vm-web-01", (22, "198.51.100.7"))
        )

    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01")
    assert [p["port"] for p in access["openPorts"]] == [22]
    assert len((await policies.get(RG, LOCATION, "web-admins")).requests) == 1


async def test_sdk_retries_an_initiate_answered_500_so_the_retry_supersedes_it(
    security_aio: AsyncSecurityCenter, emulator: EmulatorHandle
) -> None:
    policies = security_aio.jit_network_access_policies
    await policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)]))
    )
    await emulator.admin.add_fault(
        "JitNetworkAccessPolicies_Initiate", status=500, phase="after", times=1
    )

    answer = await policies.initiate(
        RG,
        LOCATION,
        "web-admins",
        initiate_request("vm-web-01", (22, "198.51.100.7")),
        retry_backoff_factor=0.01,
    )

    assert answer.virtual_machines[0].ports[0].status == "Initiating"
    first, second = (await policies.get(RG, LOCATION, "web-admins")).requests
    assert first.virtual_machines[0].ports[0].status_reason == "NewerRequestInitiated"
    assert second.virtual_machines[0].ports[0].status == "Initiated"
    calls = await emulator.admin.calls()
    assert calls["JitNetworkAccessPolicies_Initiate"]["by_status"] == {"500": 1, "202": 1}


async def test_call_counts_name_operations_and_methods(
    security_aio: AsyncSecurityCenter, emulator: EmulatorHandle
) -> None:
    policies = security_aio.jit_network_access_policies
    await policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)]))
    )
    await policies.initiate(
        RG, LOCATION, "web-admins", initiate_request("vm-web-01", (22, "198.51.100.7"))
    )
    await policies.get(RG, LOCATION, "web-admins")

    calls = await emulator.admin.calls()

    assert calls["JitNetworkAccessPolicies_CreateOrUpdate"]["by_method"] == {"PUT": 1}
    assert calls["JitNetworkAccessPolicies_Initiate"]["by_status"] == {"202": 1}
    assert await emulator.admin.call_count("JitNetworkAccessPolicies_Get", method="GET") == 1
    await emulator.admin.reset_calls()
    assert await emulator.admin.calls() == {}


def test_scoped_token_reads_inside_its_resource_group(emulator_endpoint: EmulatorEndpoint) -> None:
    with NetworkManagementClient(
        emulator_endpoint.credential("rg-web-reader-token"),
        SUBSCRIPTION,
        **emulator_endpoint.sdk_kwargs(),
    ) as network:
        assert network.network_security_groups.get(RG, "nsg-vm-web-01").name == "nsg-vm-web-01"


@pytest.mark.parametrize(
    ("token", "call", "scope"),
    [
        pytest.param(
            "rg-web-reader-token",
            lambda n: n.network_security_groups.get("rg-ops", "nsg-vm-ops-01"),
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-ops/providers/"
            "Microsoft.Network/networkSecurityGroups/nsg-vm-ops-01",
            id="a resource group scoped token cannot read another resource group",
        ),
        pytest.param(
            "rg-web-reader-token",
            lambda n: list(n.network_security_groups.list_all()),
            f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Network/networkSecurityGroups",
            id="a resource group scoped token cannot list the whole subscription",
        ),
        pytest.param(
            "no-access-token",
            lambda n: n.network_security_groups.get(RG, "nsg-vm-web-01"),
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-web/providers/"
            "Microsoft.Network/networkSecurityGroups/nsg-vm-web-01",
            id="a token without any scope cannot read anything",
        ),
    ],
)
def test_token_outside_its_scope_is_refused_like_arm_refuses(
    emulator_endpoint: EmulatorEndpoint, token: str, call: object, scope: str
) -> None:
    with (
        NetworkManagementClient(
            emulator_endpoint.credential(token), SUBSCRIPTION, **emulator_endpoint.sdk_kwargs()
        ) as network,
        pytest.raises(HttpResponseError) as caught,
    ):
        call(network)  # type: ignore[operator]

    assert caught.value.status_code == 403
    assert caught.value.error is not None
    assert caught.value.error.code == "AuthorizationFailed"
    message = caught.value.error.message
    assert "does not have authorization to perform action 'Microsoft.Network/" in message
    assert f"over scope '{scope}' or the scope is invalid" in message


def test_scoped_token_cannot_initiate_jit_elsewhere(emulator_endpoint: EmulatorEndpoint) -> None:
    with (
        SecurityCenter(
            emulator_endpoint.credential("rg-web-reader-token"),
            SUBSCRIPTION,
            **emulator_endpoint.sdk_kwargs(),
        ) as security,
        pytest.raises(HttpResponseError) as caught,
    ):
        security.jit_network_access_policies.initiate(
            "rg-ops", "northeurope", "ops", initiate_request("vm-ops-01", (22, "198.51.100.7"))
        )

    assert caught.value.status_code == 403
    assert caught.value.error is not None
    assert (
        "'Microsoft.Security/locations/jitNetworkAccessPolicies/initiate/action'"
        in caught.value.error.message
    )


def test_requests_open_nothing_while_faults_refuse_them(
    security: SecurityCenter, network: NetworkManagementClient, emulator_endpoint: EmulatorEndpoint
) -> None:
    security.jit_network_access_policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)]))
    )
    emulator_endpoint.sync_admin().add_fault(
        "JitNetworkAccessPolicies_Initiate", status=500, times=None
    )

    with pytest.raises(HttpResponseError):
        security.jit_network_access_policies.initiate(
            RG,
            LOCATION,
            "web-admins",
            initiate_request("vm-web-01", (22, "198.51.100.7")),
            retry_total=0,
        )

    assert jit_rules(network, "nsg-vm-web-01", access="Allow") == []
