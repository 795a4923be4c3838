"""ARM honours what an Entra token stands for: the identity's scopes (403 AuthorizationFailed
outside them, naming the client), its signature and its wall-clock expiry."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity.aio import ClientSecretCredential
from azure.mgmt.compute.aio import ComputeManagementClient

from azure_arm_emulator.access_tokens import mint
from azure_arm_emulator.admin_client import AdminError
from azure_arm_emulator.identities import Identity
from tests.integration.emulator.builders import RG
from tests.integration.emulator.raw_arm import arm_call
from tests.support.emulator import SUBSCRIPTION, EmulatorEndpoint, EmulatorHandle
from tests.support.identity import ARM_SCOPE, OPERATOR, TENANT_ID, WEB_TEAM, credential_kwargs

pytestmark = pytest.mark.integration

VM_PATH = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{{rg}}"
    "/providers/Microsoft.Compute/virtualMachines/{vm}"
)
COMPUTE_API = "2026-04-01"


def _credential(emulator: EmulatorHandle, client_id: str, secret: str) -> ClientSecretCredential:
    endpoint = emulator.endpoint
    return ClientSecretCredential(
        TENANT_ID, client_id, secret, authority=endpoint.base_url, **credential_kwargs(endpoint)
    )


@pytest.fixture
async def web_team_compute(emulator: EmulatorHandle) -> AsyncIterator[ComputeManagementClient]:
    async with (
        _credential(emulator, WEB_TEAM.client_id, WEB_TEAM.secret) as credential,
        ComputeManagementClient(
            credential, SUBSCRIPTION, **emulator.endpoint.sdk_kwargs()
        ) as compute,
    ):
        yield compute


async def test_scoped_identity_reads_inside_its_resource_group(
    web_team_compute: ComputeManagementClient,
) -> None:
    vm = await web_team_compute.virtual_machines.get(RG, "vm-web-01")

    assert vm.name == "vm-web-01"


async def test_scoped_identity_is_refused_outside_its_resource_group_naming_itself(
    web_team_compute: ComputeManagementClient,
) -> None:
    with pytest.raises(HttpResponseError) as caught:
        await web_team_compute.virtual_machines.get("rg-ops", "vm-ops-01")

    assert caught.value.status_code == 403
    assert caught.value.error is not None
    assert caught.value.error.code == "AuthorizationFailed"
    assert caught.value.error.message == (
        f"The client '{WEB_TEAM.client_id}' with object id '{WEB_TEAM.object_id}' does not have "
        "authorization to perform action 'Microsoft.Compute/virtualMachines/read' over scope "
        f"'/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-ops/providers/Microsoft.Compute/"
        "virtualMachines/vm-ops-01' or the scope is invalid. If access was recently granted, "
        "please refresh your credentials."
    )


async def test_scope_granted_at_runtime_applies_to_the_token_already_held(
    emulator: EmulatorHandle,
) -> None:
    narrow = [f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}"]
    identity = await emulator.admin.add_identity(secret="runtime-secret", scopes=narrow)

    async with (
        _credential(emulator, identity["clientId"], "runtime-secret") as credential,
        ComputeManagementClient(
            credential, SUBSCRIPTION, **emulator.endpoint.sdk_kwargs()
        ) as compute,
    ):
        with pytest.raises(HttpResponseError) as refused:
            await compute.virtual_machines.get("rg-ops", "vm-ops-01")
        await emulator.admin.add_identity(
            client_id=identity["clientId"],
            secret="runtime-secret",
            scopes=[f"/subscriptions/{SUBSCRIPTION}"],
        )
        vm = await compute.virtual_machines.get("rg-ops", "vm-ops-01")

    assert refused.value.status_code == 403
    assert vm.name == "vm-ops-01"
    assert await emulator.admin.call_count("Entra_Token") == 1


async def test_removed_identity_keeps_its_token_but_loses_all_access(
    emulator: EmulatorHandle,
) -> None:
    async with (
        _credential(emulator, OPERATOR.client_id, OPERATOR.secret) as credential,
        ComputeManagementClient(
            credential, SUBSCRIPTION, **emulator.endpoint.sdk_kwargs()
        ) as compute,
    ):
        await compute.virtual_machines.get(RG, "vm-web-01")
        await emulator.admin.remove_identity(OPERATOR.client_id)
        with pytest.raises(HttpResponseError) as caught:
            await compute.virtual_machines.get(RG, "vm-web-01")

    assert caught.value.status_code == 403
    assert f"with object id '{OPERATOR.object_id}'" in str(caught.value.message)


async def test_jumping_the_emulator_clock_does_not_expire_tokens(emulator: EmulatorHandle) -> None:
    async with (
        _credential(emulator, OPERATOR.client_id, OPERATOR.secret) as credential,
        ComputeManagementClient(
            credential, SUBSCRIPTION, **emulator.endpoint.sdk_kwargs()
        ) as compute,
    ):
        await compute.virtual_machines.get(RG, "vm-web-01")
        await emulator.admin.advance_clock(timedelta(hours=6))
        vm = await compute.virtual_machines.get(RG, "vm-web-01")

    assert vm.name == "vm-web-01"
    assert await emulator.admin.call_count("Entra_Token") == 1


async def test_token_lifetime_follows_the_setting(emulator: EmulatorHandle) -> None:
    await emulator.admin.update_settings(token_lifetime_seconds=900)

    async with _credential(emulator, OPERATOR.client_id, OPERATOR.secret) as credential:
        token = await credential.get_token_info(ARM_SCOPE)

    assert abs(token.expires_on - (time.time() + 900)) < 60


async def test_entra_tokens_are_accepted_when_only_known_tokens_are(
    emulator: EmulatorHandle,
) -> None:
    await emulator.admin.update_settings(accept_any_token=False)
    path = VM_PATH.format(rg=RG, vm="vm-web-01")

    async with _credential(emulator, OPERATOR.client_id, OPERATOR.secret) as credential:
        token = (await credential.get_token_info(ARM_SCOPE)).token
    accepted = await arm_call(emulator.endpoint, "GET", path, api_version=COMPUTE_API, token=token)
    opaque = await arm_call(emulator.endpoint, "GET", path, api_version=COMPUTE_API, token="x")

    assert accepted.status == 200
    assert opaque.status == 401


def _operator_identity() -> Identity:
    return Identity(
        client_id=OPERATOR.client_id,
        tenant_id=TENANT_ID,
        object_id=OPERATOR.object_id,
        display_name="azure-jit-operator",
    )


async def test_expired_entra_token_is_refused_even_when_any_bearer_is_accepted(
    emulator: EmulatorHandle,
) -> None:
    expired = mint(
        _operator_identity(),
        resource="https://management.azure.com",
        issuer_base=emulator.endpoint.base_url,
        now=time.time() - 7200,
        lifetime=3599,
        auth_method="1",
    )
    path = VM_PATH.format(rg=RG, vm="vm-web-01")

    response = await arm_call(
        emulator.endpoint, "GET", path, api_version=COMPUTE_API, token=expired
    )

    assert response.status == 401
    assert response.json()["error"]["code"] == "ExpiredAuthenticationToken"
    assert "is earlier than current UTC time" in response.json()["error"]["message"]


async def test_tampered_entra_token_is_refused_even_when_any_bearer_is_accepted(
    emulator: EmulatorHandle,
) -> None:
    async with _credential(emulator, WEB_TEAM.client_id, WEB_TEAM.secret) as credential:
        token = (await credential.get_token_info(ARM_SCOPE)).token
    header, _, signature = token.split(".")
    forged = mint(
        _operator_identity(),
        resource="https://management.azure.com",
        issuer_base=emulator.endpoint.base_url,
        now=time.time(),
        lifetime=3599,
        auth_method="1",
    ).split(".")[1]
    path = VM_PATH.format(rg="rg-ops", vm="vm-ops-01")

    response = await arm_call(
        emulator.endpoint,
        "GET",
        path,
        api_version=COMPUTE_API,
        token=f"{header}.{forged}.{signature}",
    )

    assert response.status == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_admin_api_lists_identities_without_their_secrets_and_refuses_bad_ones(
    emulator_endpoint: EmulatorEndpoint,
) -> None:
    admin = emulator_endpoint.sync_admin()

    listed = {i["clientId"]: i for i in admin.identities()}
    with pytest.raises(AdminError) as refused:
        admin.add_identity(client_id="not-a-guid")
    with pytest.raises(AdminError) as missing:
        admin.remove_identity("99999999-0000-4000-8000-000000000000")

    assert listed[OPERATOR.client_id]["secret"] == "***"
    assert listed[WEB_TEAM.client_id]["federatedSubjects"] == [WEB_TEAM.subject]
    assert refused.value.status == 400
    assert "'clientId' must be a GUID" in str(refused.value.body)
    assert missing.value.status == 404
