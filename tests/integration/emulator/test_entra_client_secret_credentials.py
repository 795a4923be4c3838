"""azure-identity's ClientSecretCredential (sync MSAL-based and aio) and MSAL itself get ARM
tokens from the emulator's Entra endpoint, and real SDK clients use them."""

from __future__ import annotations

import time

import msal
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.aio import ComputeManagementClient as AsyncComputeManagementClient

from azure_arm_emulator.access_tokens import decode_unverified
from tests.integration.emulator.builders import RG
from tests.support.emulator import SUBSCRIPTION, EmulatorEndpoint, EmulatorHandle
from tests.support.identity import ARM_SCOPE, OPERATOR, TENANT_ID, credential_kwargs

pytestmark = pytest.mark.integration


def test_sync_credential_token_lets_the_compute_sdk_read_a_vm(
    emulator_endpoint: EmulatorEndpoint,
) -> None:
    # MSAL would ask login.microsoftonline.com whether the authority is known: the emulator
    # is not, so sync credentials need disable_instance_discovery=True.
    with (
        ClientSecretCredential(
            TENANT_ID,
            OPERATOR.client_id,
            OPERATOR.secret,
            authority=emulator_endpoint.base_url,
            disable_instance_discovery=True,
            **credential_kwargs(emulator_endpoint),
        ) as credential,
        ComputeManagementClient(
            credential, SUBSCRIPTION, **emulator_endpoint.sdk_kwargs()
        ) as compute,
    ):
        vm = compute.virtual_machines.get(RG, "vm-web-01")

    assert vm.name == "vm-web-01"
    calls = emulator_endpoint.sync_admin().calls()
    assert calls["Entra_OpenIdConfiguration"]["by_status"] == {"200": 1}
    assert calls["Entra_Token"]["by_status"] == {"200": 1}
    assert "Entra_InstanceDiscovery" not in calls


async def test_async_credential_token_lets_the_compute_sdk_read_a_vm(
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
        AsyncComputeManagementClient(credential, SUBSCRIPTION, **endpoint.sdk_kwargs()) as compute,
    ):
        vm = await compute.virtual_machines.get(RG, "vm-web-01")

    assert vm.name == "vm-web-01"
    assert (await emulator.admin.calls())["Entra_Token"]["by_status"] == {"200": 1}


async def test_access_token_is_a_jwt_naming_the_identity_and_arm(emulator: EmulatorHandle) -> None:
    endpoint = emulator.endpoint
    async with AsyncClientSecretCredential(
        TENANT_ID,
        OPERATOR.client_id,
        OPERATOR.secret,
        authority=endpoint.base_url,
        **credential_kwargs(endpoint),
    ) as credential:
        token = await credential.get_token_info(ARM_SCOPE)

    header, claims = decode_unverified(token.token)
    assert header["typ"] == "JWT"
    assert claims["aud"] == "https://management.azure.com"
    assert claims["tid"] == TENANT_ID
    assert claims["appid"] == OPERATOR.client_id
    assert claims["oid"] == OPERATOR.object_id
    assert claims["iss"] == f"{endpoint.base_url}/{TENANT_ID}/"
    assert claims["exp"] - claims["iat"] == 3599
    assert abs(token.expires_on - (time.time() + 3599)) < 60


async def test_credential_asks_for_one_token_for_many_arm_calls(emulator: EmulatorHandle) -> None:
    endpoint = emulator.endpoint
    async with (
        AsyncClientSecretCredential(
            TENANT_ID,
            OPERATOR.client_id,
            OPERATOR.secret,
            authority=endpoint.base_url,
            **credential_kwargs(endpoint),
        ) as credential,
        AsyncComputeManagementClient(credential, SUBSCRIPTION, **endpoint.sdk_kwargs()) as compute,
    ):
        for name in ("vm-web-01", "vm-web-02", "vm-db-01"):
            await compute.virtual_machines.get(RG, name)

    assert await emulator.admin.call_count("Entra_Token") == 1
    assert await emulator.admin.call_count("VirtualMachines_Get") == 3


def test_msal_instance_discovery_on_the_emulator_leads_to_its_token_endpoint(
    emulator_endpoint: EmulatorEndpoint,
) -> None:
    base = emulator_endpoint.base_url
    with requests.Session() as session:
        session.verify = str(emulator_endpoint.ca_path)
        session.trust_env = False  # else REQUESTS_CA_BUNDLE would override session.verify
        app = msal.ConfidentialClientApplication(
            OPERATOR.client_id,
            client_credential=OPERATOR.secret,
            authority=f"{base}/{TENANT_ID}",
            instance_discovery=f"{base}/common/discovery/instance",
            http_client=session,
        )
        result = app.acquire_token_for_client([ARM_SCOPE])

    assert result.get("token_type") == "Bearer", result
    assert result["expires_in"] == 3599
    calls = emulator_endpoint.sync_admin().calls()
    assert calls["Entra_InstanceDiscovery"]["by_status"] == {"200": 1}
    assert calls["Entra_Token"]["by_status"] == {"200": 1}


@pytest.mark.parametrize(
    ("login", "status", "reason"),
    [
        pytest.param(
            (TENANT_ID, OPERATOR.client_id, "not-the-secret"),
            401,
            "(invalid_client) AADSTS7000215: Invalid client secret provided.",
            id="a wrong secret is an invalid client",
        ),
        pytest.param(
            (TENANT_ID, "99999999-0000-4000-8000-000000000000", OPERATOR.secret),
            400,
            "(unauthorized_client) AADSTS700016: Application with identifier "
            "'99999999-0000-4000-8000-000000000000' was not found in the directory",
            id="an unknown client id is not found in the directory",
        ),
        pytest.param(
            ("dddddddd-dddd-dddd-dddd-dddddddddddd", OPERATOR.client_id, OPERATOR.secret),
            400,
            "(invalid_request) AADSTS90002: Tenant 'dddddddd-dddd-dddd-dddd-dddddddddddd' "
            "not found.",
            id="an unknown tenant is not found",
        ),
    ],
)
async def test_refused_secret_login_reads_like_entra(
    emulator: EmulatorHandle, login: tuple[str, str, str], status: int, reason: str
) -> None:
    tenant, client_id, secret = login
    endpoint = emulator.endpoint
    async with AsyncClientSecretCredential(
        tenant, client_id, secret, authority=endpoint.base_url, **credential_kwargs(endpoint)
    ) as credential:
        with pytest.raises(ClientAuthenticationError) as caught:
            await credential.get_token(ARM_SCOPE)

    assert reason in caught.value.message
    assert caught.value.response is not None
    assert caught.value.response.status_code == status


async def test_identity_of_another_tenant_is_not_found_in_this_one(
    emulator: EmulatorHandle,
) -> None:
    other = await emulator.admin.add_identity(
        tenant_id="eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee", secret="other-secret"
    )
    endpoint = emulator.endpoint
    async with AsyncClientSecretCredential(
        TENANT_ID,
        other["clientId"],
        "other-secret",
        authority=endpoint.base_url,
        **credential_kwargs(endpoint),
    ) as credential:
        with pytest.raises(ClientAuthenticationError) as caught:
            await credential.get_token(ARM_SCOPE)

    assert f"AADSTS700016: Application with identifier '{other['clientId']}'" in (
        caught.value.message
    )


def test_sync_credential_with_a_wrong_secret_fails_with_the_aadsts_reason(
    emulator_endpoint: EmulatorEndpoint,
) -> None:
    with (
        ClientSecretCredential(
            TENANT_ID,
            OPERATOR.client_id,
            "not-the-secret",
            authority=emulator_endpoint.base_url,
            disable_instance_discovery=True,
            **credential_kwargs(emulator_endpoint),
        ) as credential,
        pytest.raises(ClientAuthenticationError) as caught,
    ):
        credential.get_token(ARM_SCOPE)

    assert "AADSTS7000215: Invalid client secret provided" in caught.value.message


async def test_token_endpoint_outage_is_retried_by_the_credential(
    emulator: EmulatorHandle,
) -> None:
    await emulator.admin.add_fault("Entra_Token", status=503, retry_after=0, times=1)
    endpoint = emulator.endpoint
    async with AsyncClientSecretCredential(
        TENANT_ID,
        OPERATOR.client_id,
        OPERATOR.secret,
        authority=endpoint.base_url,
        **credential_kwargs(endpoint),
    ) as credential:
        token = await credential.get_token_info(ARM_SCOPE)

    assert token.token
    assert (await emulator.admin.calls())["Entra_Token"]["by_status"] == {"503": 1, "200": 1}


async def test_arm_wide_faults_leave_the_token_endpoint_alone(emulator: EmulatorHandle) -> None:
    await emulator.admin.add_fault("*", status=500, times=None)
    endpoint = emulator.endpoint
    async with AsyncClientSecretCredential(
        TENANT_ID,
        OPERATOR.client_id,
        OPERATOR.secret,
        authority=endpoint.base_url,
        **credential_kwargs(endpoint),
    ) as credential:
        token = await credential.get_token_info(ARM_SCOPE)

    assert token.token
    assert (await emulator.admin.calls())["Entra_Token"]["by_status"] == {"200": 1}
