"""JIT answers the way recordings of real Azure show (E6-E8, E13, E14), and the switches for
what nobody has shown (U1, U7) change what a client reads back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from azure.mgmt.security.aio import SecurityCenter

from tests.integration.emulator.builders import (
    LOCATION,
    RG,
    initiate_request,
    policy,
    port_rule,
    vm_id,
)
from tests.integration.emulator.raw_arm import arm_call
from tests.support.emulator import SUBSCRIPTION, EmulatorHandle
from tests.support.identity import OPERATOR, TENANT_ID, credential_kwargs

pytestmark = pytest.mark.integration

POLICIES = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}/providers/Microsoft.Security"
    f"/locations/{LOCATION}/jitNetworkAccessPolicies"
)
POLICY_ID = f"{POLICIES}/web-admins"


def _policy_body(**port: Any) -> dict[str, Any]:
    rule = {
        "number": 22,
        "protocol": "TCP",
        "allowedSourceAddressPrefix": "*",
        "maxRequestAccessDuration": "PT3H",
        **port,
    }
    return {
        "kind": "Basic",
        "properties": {"virtualMachines": [{"id": vm_id("vm-web-01"), "ports": [rule]}]},
    }


def _initiate_body(**port: Any) -> dict[str, Any]:
    return {
        "virtualMachines": [
            {
                "id": vm_id("vm-web-01"),
                "ports": [{"number": 22, "allowedSourceAddressPrefix": "198.51.100.7", **port}],
            }
        ]
    }


async def _web_admins(security: SecurityCenter) -> None:
    await security.jit_network_access_policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)]))
    )


# --------------------------------------------------------------------------- initiate (E7)


async def test_initiate_is_accepted_as_initiating_and_applied_seconds_later(
    emulator: EmulatorHandle, security_aio: SecurityCenter
) -> None:
    await emulator.admin.update_settings(apply_delay_seconds=3)
    await _web_admins(security_aio)
    policies = security_aio.jit_network_access_policies

    answer = await policies.initiate(
        RG, LOCATION, "web-admins", initiate_request("vm-web-01", (22, "198.51.100.7"))
    )

    [port] = answer.virtual_machines[0].ports
    assert (port.status, port.status_reason) == ("Initiating", "UserRequested")
    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01")
    assert access["openPorts"] == []
    await emulator.admin.advance_clock(timedelta(seconds=3))
    [request] = (await policies.get(RG, LOCATION, "web-admins")).requests
    assert request.virtual_machines[0].ports[0].status == "Initiated"
    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01")
    assert [p["port"] for p in access["openPorts"]] == [22]


async def test_initiate_is_no_long_running_operation_and_echoes_the_end_as_sent(
    emulator: EmulatorHandle,
) -> None:
    await arm_call(emulator.endpoint, "PUT", POLICY_ID, body=_policy_body())
    end = (await emulator.admin.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    sent = f"{end}.5921811Z"  # seven fractional digits, as in the recording

    response = await arm_call(
        emulator.endpoint, "POST", f"{POLICY_ID}/initiate", body=_initiate_body(endTimeUtc=sent)
    )

    assert response.status == 202
    assert "Location" not in response.headers
    assert "Azure-AsyncOperation" not in response.headers
    [answered] = response.json()["virtualMachines"][0]["ports"]
    assert answered["endTimeUtc"] == sent
    fetched = (await arm_call(emulator.endpoint, "GET", POLICY_ID)).json()
    [stored] = fetched["properties"]["requests"][0]["virtualMachines"][0]["ports"]
    assert stored["endTimeUtc"] == sent


# --------------------------------------------------------------------------- policy PUT (E6)


async def test_a_policy_put_is_updating_until_it_settles(
    emulator: EmulatorHandle, security_aio: SecurityCenter
) -> None:
    await emulator.admin.update_settings(policy_settle_seconds=3)
    policies = security_aio.jit_network_access_policies

    written = await policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)]))
    )

    assert written.provisioning_state == "Updating"
    assert written.requests == []
    assert (await policies.get(RG, LOCATION, "web-admins")).provisioning_state == "Updating"
    listed = [p async for p in policies.list_by_resource_group(RG)]
    assert [p.provisioning_state for p in listed] == ["Updating"]
    await emulator.admin.advance_clock(timedelta(seconds=3))
    assert (await policies.get(RG, LOCATION, "web-admins")).provisioning_state == "Succeeded"


async def test_without_settling_a_policy_put_succeeds_at_once(
    emulator: EmulatorHandle, security_aio: SecurityCenter
) -> None:
    await emulator.admin.update_settings(policy_settle_seconds=0)

    written = await security_aio.jit_network_access_policies.create_or_update(
        RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22)]))
    )

    assert written.provisioning_state == "Succeeded"


# --------------------------------------------------------------------------- history (U1, U7)


async def test_history_without_justifications(
    emulator: EmulatorHandle, security_aio: SecurityCenter
) -> None:
    await emulator.admin.update_settings(history_justifications=False)
    await _web_admins(security_aio)
    policies = security_aio.jit_network_access_policies

    answer = await policies.initiate(
        RG, LOCATION, "web-admins", initiate_request("vm-web-01", (22, "198.51.100.7"))
    )

    assert answer.justification == "INC-4711"
    [request] = (await policies.get(RG, LOCATION, "web-admins")).requests
    assert request.justification is None


async def test_a_limited_history_shows_only_the_newest_requests_yet_still_revokes(
    emulator: EmulatorHandle, security_aio: SecurityCenter
) -> None:
    await emulator.admin.update_settings(history_limit=2)
    policies = security_aio.jit_network_access_policies
    await policies.create_or_update(
        RG,
        LOCATION,
        "web-admins",
        policy(("vm-web-01", [port_rule(22), port_rule(3389), port_rule(8443)])),
    )
    now = await emulator.admin.now()
    for number, minutes in ((22, 10), (3389, 60), (8443, 60)):
        await policies.initiate(
            RG,
            LOCATION,
            "web-admins",
            initiate_request(
                "vm-web-01", (number, "198.51.100.7"), end=now + timedelta(minutes=minutes)
            ),
        )

    shown = (await policies.get(RG, LOCATION, "web-admins")).requests

    assert [r.virtual_machines[0].ports[0].number for r in shown] == [3389, 8443]
    await emulator.admin.advance_clock(timedelta(minutes=11))
    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01")
    assert sorted(p["port"] for p in access["openPorts"]) == [3389, 8443]


# ------------------------------------------------------------------ validation (E8, E13, E14)


@pytest.mark.parametrize(
    "port",
    [
        pytest.param({}, id="neither endTimeUtc nor duration"),
        pytest.param({"endTimeUtc": "2030-01-01T00:00:00Z", "duration": "PT1H"}, id="both"),
    ],
)
async def test_the_initiate_body_is_checked_before_the_policy_is_looked_up(
    emulator: EmulatorHandle, port: dict[str, Any]
) -> None:
    response = await arm_call(
        emulator.endpoint, "POST", f"{POLICIES}/nobody/initiate", body=_initiate_body(**port)
    )

    assert response.status == 400
    error = response.json()["error"]
    assert error["code"] == "InvalidInitiateInput"
    assert error["message"] == "Only one of fields 'EndTimeUtc' and 'Duration' can be set."


async def test_a_valid_initiate_of_a_missing_policy_is_policy_not_found(
    emulator: EmulatorHandle,
) -> None:
    response = await arm_call(
        emulator.endpoint,
        "POST",
        f"{POLICIES}/nobody/initiate",
        body=_initiate_body(duration="PT1H"),
    )

    assert response.status == 404
    assert response.json()["error"]["code"] == "PolicyNotFound"


@pytest.mark.parametrize(
    "port",
    [
        pytest.param({"number": 3389, "duration": "PT1H"}, id="a port not in the policy"),
        pytest.param({"duration": "PT4H"}, id="longer than the policy allows"),
        pytest.param(
            {"duration": "PT1H", "allowedSourceAddressPrefix": "192.0.2.1"},
            id="a source outside the policy",
        ),
    ],
)
async def test_anything_outside_the_policy_gets_the_one_generic_message(
    emulator: EmulatorHandle, port: dict[str, Any]
) -> None:
    body = _policy_body(allowedSourceAddressPrefix="198.51.100.0/24")
    await arm_call(emulator.endpoint, "PUT", POLICY_ID, body=body)

    response = await arm_call(
        emulator.endpoint, "POST", f"{POLICY_ID}/initiate", body=_initiate_body(**port)
    )

    assert response.status == 400
    assert response.json()["error"]["message"] == (
        f"The given access request is not a subset of policy '{POLICY_ID}'. Please make sure "
        "that the access request is within the allowed policy properties."
    )


async def test_an_ipv6_source_is_refused(emulator: EmulatorHandle) -> None:
    await arm_call(emulator.endpoint, "PUT", POLICY_ID, body=_policy_body())

    response = await arm_call(
        emulator.endpoint,
        "POST",
        f"{POLICY_ID}/initiate",
        body=_initiate_body(duration="PT1H", allowedSourceAddressPrefix="2001:db8::1"),
    )

    assert response.status == 400
    assert (
        "IPv6 format, which is unsupported by Just-In-Time Network Access"
        in (response.json()["error"]["message"])
    )


async def test_an_ipv6_prefix_in_a_policy_is_refused(emulator: EmulatorHandle) -> None:
    body = _policy_body(allowedSourceAddressPrefix="2001:db8::/64")

    response = await arm_call(emulator.endpoint, "PUT", POLICY_ID, body=body)

    assert response.status == 400
    assert "IPv6 format" in response.json()["error"]["message"]


async def test_an_empty_protocol_is_an_internal_server_error(emulator: EmulatorHandle) -> None:
    response = await arm_call(emulator.endpoint, "PUT", POLICY_ID, body=_policy_body(protocol=""))

    assert response.status == 500
    assert response.json()["error"]["message"] == "Internal server error has occurred."
    assert (await arm_call(emulator.endpoint, "GET", POLICY_ID)).status == 404


@pytest.mark.parametrize(
    ("name", "status"),
    [
        pytest.param("p" * (56 - len("vm-web-01")), 200, id="56 characters with the VM name"),
        pytest.param("p" * (57 - len("vm-web-01")), 400, id="57 characters with the VM name"),
    ],
)
async def test_policy_and_vm_names_may_have_56_characters_together(
    emulator: EmulatorHandle, name: str, status: int
) -> None:
    response = await arm_call(emulator.endpoint, "PUT", f"{POLICIES}/{name}", body=_policy_body())

    assert response.status == status, response.text
    if status == 400:
        assert response.json()["error"]["code"] == "InvalidPolicyInput"


async def test_a_refused_policy_put_changes_nothing(
    emulator: EmulatorHandle, security_aio: SecurityCenter
) -> None:
    with pytest.raises(HttpResponseError) as caught:
        await security_aio.jit_network_access_policies.create_or_update(
            RG, LOCATION, "web-admins", policy(("vm-web-01", [port_rule(22, prefix="::/0")]))
        )

    assert caught.value.status_code == 400
    access = await emulator.admin.vm_access(SUBSCRIPTION, RG, "vm-web-01")
    assert [g["jitDenyRules"] for g in access["guards"]] == [[]]


async def test_a_service_principals_request_has_an_empty_requestor(
    emulator: EmulatorHandle,
) -> None:
    endpoint = emulator.endpoint
    async with (
        AsyncClientSecretCredential(
            TENANT_ID,
            OPERATOR.client_id,
            OPERATOR.secret,
            authority=endpoint.base_url,
            **credential_kwargs(endpoint),
        ) as credential,
        SecurityCenter(credential, SUBSCRIPTION, **endpoint.sdk_kwargs()) as security,
    ):
        await _web_admins(security)
        answer = await security.jit_network_access_policies.initiate(
            RG, LOCATION, "web-admins", initiate_request("vm-web-01", (22, "198.51.100.7"))
        )
        [request] = (
            await security.jit_network_access_policies.get(RG, LOCATION, "web-admins")
        ).requests

    assert answer.requestor == ""
    assert request.requestor == ""
