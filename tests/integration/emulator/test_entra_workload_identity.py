"""Workload Identity as on AKS: a projected service account token exchanged at the emulator's
Entra endpoint by WorkloadIdentityCredential and by DefaultAzureCredential configured only
through the environment, exactly as the operator creates it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import DefaultAzureCredential, WorkloadIdentityCredential
from azure.mgmt.compute.aio import ComputeManagementClient

from azure_jit_operator.azure.clients import default_credential
from azure_jit_operator.config import Settings
from tests.integration.emulator.builders import RG
from tests.support.emulator import SUBSCRIPTION, EmulatorHandle
from tests.support.identity import (
    AMBIENT_CREDENTIAL_VARIABLES,
    ARM_SCOPE,
    OPERATOR,
    TENANT_ID,
    credential_kwargs,
    workload_identity_env,
    write_service_account_token,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def workload_identity_environment(
    emulator: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """What the AKS webhook injects into the operator's pod, pointed at the emulator."""
    token_file = write_service_account_token(tmp_path / "sa-token", OPERATOR.subject)
    env = workload_identity_env(emulator.endpoint, token_file=token_file)
    for name in AMBIENT_CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _workload_credential(
    emulator: EmulatorHandle, token_file: Path, client_id: str = OPERATOR.client_id
) -> WorkloadIdentityCredential:
    return WorkloadIdentityCredential(
        tenant_id=TENANT_ID,
        client_id=client_id,
        token_file_path=str(token_file),
        authority=emulator.endpoint.base_url,
        **credential_kwargs(emulator.endpoint),
    )


async def test_federated_service_account_reaches_arm(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    token_file = write_service_account_token(tmp_path / "sa-token", OPERATOR.subject)

    async with (
        _workload_credential(emulator, token_file) as credential,
        ComputeManagementClient(
            credential, SUBSCRIPTION, **emulator.endpoint.sdk_kwargs()
        ) as compute,
    ):
        vm = await compute.virtual_machines.get(RG, "vm-web-01")

    assert vm.name == "vm-web-01"


@pytest.mark.parametrize(
    ("subject", "claims", "reason"),
    [
        pytest.param(
            "system:serviceaccount:default:someone-else",
            {},
            "(invalid_client) AADSTS70021: No matching federated identity record found for "
            "presented assertion. Assertion Issuer: 'https://kubernetes.default.svc.cluster.local'."
            " Assertion Subject: 'system:serviceaccount:default:someone-else'.",
            id="a service account that is not federated is refused with its subject named",
        ),
        pytest.param(
            OPERATOR.subject,
            {"audience": "https://kubernetes.default.svc"},
            "(invalid_client) AADSTS700212: No matching federated identity record found for "
            "presented assertion audience 'https://kubernetes.default.svc'.",
            id="a token projected for the API server audience is refused",
        ),
        pytest.param(
            OPERATOR.subject,
            {"issued_at": 0, "lifetime": 3600},
            "(invalid_client) AADSTS700024: Client assertion is not within its valid time range.",
            id="an expired service account token is refused",
        ),
    ],
)
async def test_refused_service_account_token_reads_like_entra(
    emulator: EmulatorHandle,
    tmp_path: Path,
    subject: str,
    claims: dict[str, Any],
    reason: str,
) -> None:
    token_file = write_service_account_token(tmp_path / "sa-token", subject, **claims)

    async with _workload_credential(emulator, token_file) as credential:
        with pytest.raises(ClientAuthenticationError) as caught:
            await credential.get_token(ARM_SCOPE)

    assert reason in caught.value.message
    assert caught.value.response is not None
    assert caught.value.response.status_code == 401


async def test_identity_federated_at_runtime_accepts_its_service_account(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    subject = "system:serviceaccount:team-db:jit-db"
    identity = await emulator.admin.add_identity(
        federated_subjects=[subject],
        scopes=[f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}"],
    )
    token_file = write_service_account_token(tmp_path / "sa-token", subject)

    async with (
        _workload_credential(emulator, token_file, identity["clientId"]) as credential,
        ComputeManagementClient(
            credential, SUBSCRIPTION, **emulator.endpoint.sdk_kwargs()
        ) as compute,
    ):
        vm = await compute.virtual_machines.get(RG, "vm-db-01")

    assert vm.name == "vm-db-01"


async def test_default_credential_configured_by_environment_reaches_arm(
    emulator: EmulatorHandle, workload_identity_environment: dict[str, str]
) -> None:
    endpoint = emulator.endpoint

    async with (
        DefaultAzureCredential(connection_verify=str(endpoint.ca_path)) as credential,
        ComputeManagementClient(credential, SUBSCRIPTION, **endpoint.sdk_kwargs()) as compute,
    ):
        vms = [vm.name async for vm in compute.virtual_machines.list(RG)]

    assert "vm-web-01" in vms
    assert (await emulator.admin.calls())["Entra_Token"]["by_status"] == {"200": 1}


async def test_operator_credential_factory_gets_its_token_from_the_emulator(
    emulator: EmulatorHandle, workload_identity_environment: dict[str, str]
) -> None:
    endpoint = emulator.endpoint
    settings = Settings(arm_endpoint=endpoint.base_url, ca_bundle=endpoint.ca_path)
    credential = default_credential(settings)
    try:
        async with ComputeManagementClient(
            credential, SUBSCRIPTION, **endpoint.sdk_kwargs()
        ) as compute:
            vm = await compute.virtual_machines.get(RG, "vm-web-01")
    finally:
        await credential.close()

    assert vm.name == "vm-web-01"
    assert await emulator.admin.call_count("Entra_Token") == 1
