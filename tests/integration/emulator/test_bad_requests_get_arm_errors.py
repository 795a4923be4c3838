"""Whatever a client sends, the emulator answers with an ARM-shaped CloudError (the
``{"error": {"code", "message"}}`` body and status ARM uses), never a stack trace."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.emulator.builders import vm_id
from tests.integration.emulator.raw_arm import UNSET, arm_call
from tests.support.emulator import SUBSCRIPTION, EmulatorHandle

pytestmark = pytest.mark.integration

RG_PATH = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-web"
POLICY = f"{RG_PATH}/providers/Microsoft.Security/locations/westeurope/jitNetworkAccessPolicies/p1"
NSG = f"{RG_PATH}/providers/Microsoft.Network/networkSecurityGroups/nsg-vm-web-01"
VM = f"{RG_PATH}/providers/Microsoft.Compute/virtualMachines/vm-web-01"


def _policy_body() -> dict[str, Any]:
    return {
        "properties": {
            "virtualMachines": [
                {
                    "id": vm_id("vm-web-01"),
                    "ports": [
                        {
                            "number": 22,
                            "protocol": "*",
                            "allowedSourceAddressPrefix": "*",
                            "maxRequestAccessDuration": "PT3H",
                        }
                    ],
                }
            ]
        }
    }


CASES = [
    pytest.param(
        {"method": "GET", "path": VM, "token": None, "api_version": "2026-04-01"},
        401,
        "AuthenticationFailed",
        id="a call without an Authorization header is unauthenticated",
    ),
    pytest.param(
        {
            "method": "GET",
            "path": VM,
            "authorization": "Basic dXNlcjpwdw==",
            "api_version": "2026-04-01",
        },
        401,
        "AuthenticationFailed",
        id="a call with a non-bearer Authorization header is unauthenticated",
    ),
    pytest.param(
        {"method": "GET", "path": POLICY, "api_version": None},
        400,
        "MissingApiVersionParameter",
        id="a call without api-version is refused",
    ),
    pytest.param(
        {"method": "GET", "path": POLICY, "api_version": "2099-01-01"},
        400,
        "NoRegisteredProviderFound",
        id="an api-version the resource type does not serve is refused",
    ),
    pytest.param(
        {"method": "GET", "path": NSG, "api_version": "2020-01-01"},
        400,
        "NoRegisteredProviderFound",
        id="a security api-version on a network resource is refused",
    ),
    pytest.param(
        {"method": "GET", "path": POLICY, "api_version": "latest"},
        400,
        "InvalidApiVersionParameter",
        id="an api-version that is not a date is invalid",
    ),
    pytest.param(
        {"method": "GET", "path": f"{RG_PATH}/providers/Microsoft.Nope/things/x"},
        400,
        "InvalidResourceNamespace",
        id="an unknown provider namespace is invalid",
    ),
    pytest.param(
        {"method": "GET", "path": f"{RG_PATH}/providers/Microsoft.Network/routeTables/x"},
        400,
        "InvalidResourceType",
        id="an unknown resource type in a known namespace is invalid",
    ),
    pytest.param(
        {"method": "GET", "path": "/nothing/here"},
        404,
        "InvalidRequestUri",
        id="a path outside any subscription is not a valid request uri",
    ),
    pytest.param(
        {"method": "PATCH", "path": POLICY, "body": {}},
        405,
        "MethodNotAllowed",
        id="a method the resource does not support is not allowed",
    ),
    pytest.param(
        {"method": "PUT", "path": POLICY, "raw_body": b'{"properties": {'},
        400,
        "InvalidRequestContent",
        id="a truncated JSON body cannot be deserialized",
    ),
    pytest.param(
        {"method": "PUT", "path": POLICY, "raw_body": b"\xff\xfe not json"},
        400,
        "InvalidRequestContent",
        id="a body that is not UTF-8 cannot be deserialized",
    ),
    pytest.param(
        {"method": "PUT", "path": POLICY, "raw_body": b"{" + b" " * (5 * 1024 * 1024) + b"}"},
        413,
        "RequestEntityTooLarge",
        id="a body over the size limit is refused",
    ),
    pytest.param(
        {"method": "PUT", "path": POLICY, "body": [1, 2, 3]},
        400,
        "InvalidRequestContent",
        id="a JSON array where an object belongs cannot be deserialized",
    ),
    pytest.param(
        {"method": "PUT", "path": POLICY},
        400,
        "InvalidRequestContent",
        id="an empty body for a PUT cannot be deserialized",
    ),
    pytest.param(
        {"method": "PUT", "path": POLICY, "body": {"properties": {"virtualMachines": "vm1"}}},
        400,
        "InvalidPolicyInput",
        id="a policy whose virtual machines are not a list is invalid",
    ),
    pytest.param(
        {
            "method": "PUT",
            "path": f"{NSG}/securityRules/r1",
            "api_version": "2026-03-01",
            "body": {"properties": {"protocol": "Tcp"}},
        },
        400,
        "InvalidRequestFormat",
        id="a security rule without access, priority and direction is invalid",
    ),
    pytest.param(
        {
            "method": "GET",
            "path": "/subscriptions/not-a-guid/resourceGroups/rg/providers/"
            "Microsoft.Compute/virtualMachines/vm",
            "api_version": "2026-04-01",
        },
        400,
        "InvalidSubscriptionId",
        id="a subscription id that is not a GUID is invalid",
    ),
]


@pytest.mark.parametrize(("call", "status", "code"), CASES)
async def test_bad_request_gets_an_arm_error_body(
    emulator: EmulatorHandle, call: dict[str, Any], status: int, code: str
) -> None:
    call = dict(call)
    method, path = call.pop("method"), call.pop("path")
    if "body" not in call:
        call["body"] = UNSET

    response = await arm_call(emulator.endpoint, method, path, **call)

    assert response.status == status
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert "Traceback" not in response.text
    assert "x-ms-request-id" in response.headers


async def test_unauthenticated_call_carries_a_bearer_challenge(emulator: EmulatorHandle) -> None:
    response = await arm_call(emulator.endpoint, "GET", VM, token=None, api_version="2026-04-01")

    assert response.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")


async def test_unsupported_api_version_names_the_supported_ones(emulator: EmulatorHandle) -> None:
    response = await arm_call(emulator.endpoint, "GET", NSG, api_version="2019-02-01")

    message = response.json()["error"]["message"]
    assert "'2019-02-01'" in message
    assert "2026-03-01" in message


async def test_policy_put_with_both_prefix_fields_names_the_offending_property(
    emulator: EmulatorHandle,
) -> None:
    body = _policy_body()
    body["properties"]["virtualMachines"][0]["ports"][0]["allowedSourceAddressPrefixes"] = ["*"]

    response = await arm_call(emulator.endpoint, "PUT", POLICY, body=body)

    error = response.json()["error"]
    assert (response.status, error["code"]) == (400, "InvalidPolicyInput")
    assert error["target"] == "properties.virtualMachines[0].ports[0].allowedSourceAddressPrefixes"


async def test_initiate_by_duration_is_accepted_as_the_service_does(
    emulator: EmulatorHandle,
) -> None:
    await arm_call(emulator.endpoint, "PUT", POLICY, body=_policy_body())
    port = {"number": 22, "duration": "PT1H", "allowedSourceAddressPrefix": "198.51.100.7"}

    response = await arm_call(
        emulator.endpoint,
        "POST",
        f"{POLICY}/initiate",
        body={"virtualMachines": [{"id": vm_id("vm-web-01"), "ports": [port]}]},
    )

    assert response.status == 202
    assert response.json()["virtualMachines"][0]["ports"][0]["status"] == "Initiating"


async def test_initiate_with_both_end_time_and_duration_is_refused(
    emulator: EmulatorHandle,
) -> None:
    await arm_call(emulator.endpoint, "PUT", POLICY, body=_policy_body())
    port = {"number": 22, "duration": "PT1H", "endTimeUtc": "2099-01-01T00:00:00Z"}

    response = await arm_call(
        emulator.endpoint,
        "POST",
        f"{POLICY}/initiate",
        body={"virtualMachines": [{"id": vm_id("vm-web-01"), "ports": [port]}]},
    )

    assert response.status == 400
    assert response.json()["error"] == {
        "code": "InvalidInitiateInput",
        "message": "Only one of fields 'EndTimeUtc' and 'Duration' can be set.",
        "target": "virtualMachines[0].ports[0]",
    }


async def test_initiate_against_a_missing_policy_is_not_found(emulator: EmulatorHandle) -> None:
    port = {"number": 22, "endTimeUtc": "2099-01-01T00:00:00Z"}

    response = await arm_call(
        emulator.endpoint,
        "POST",
        f"{POLICY}/initiate",
        body={"virtualMachines": [{"id": vm_id("vm-web-01"), "ports": [port]}]},
    )

    assert (response.status, response.json()["error"]["code"]) == (404, "PolicyNotFound")
