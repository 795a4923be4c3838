"""Real azure-mgmt-* SDK clients (sync and aio) pointed at the session emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.aio import ComputeManagementClient as AsyncComputeManagementClient
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.aio import NetworkManagementClient as AsyncNetworkManagementClient
from azure.mgmt.security import SecurityCenter
from azure.mgmt.security.aio import SecurityCenter as AsyncSecurityCenter

from tests.integration.emulator.builders import FAST_POLLING
from tests.support.emulator import SUBSCRIPTION, EmulatorEndpoint, EmulatorHandle


@pytest.fixture
def security(emulator_endpoint: EmulatorEndpoint) -> Iterator[SecurityCenter]:
    with SecurityCenter(
        emulator_endpoint.credential(), SUBSCRIPTION, **emulator_endpoint.sdk_kwargs()
    ) as client:
        yield client


@pytest.fixture
def network(emulator_endpoint: EmulatorEndpoint) -> Iterator[NetworkManagementClient]:
    with NetworkManagementClient(
        emulator_endpoint.credential(), SUBSCRIPTION, **emulator_endpoint.sdk_kwargs(**FAST_POLLING)
    ) as client:
        yield client


@pytest.fixture
def compute(emulator_endpoint: EmulatorEndpoint) -> Iterator[ComputeManagementClient]:
    with ComputeManagementClient(
        emulator_endpoint.credential(), SUBSCRIPTION, **emulator_endpoint.sdk_kwargs()
    ) as client:
        yield client


@pytest.fixture
async def security_aio(emulator: EmulatorHandle) -> AsyncIterator[AsyncSecurityCenter]:
    async with (
        emulator.endpoint.async_credential() as credential,
        AsyncSecurityCenter(credential, SUBSCRIPTION, **emulator.endpoint.sdk_kwargs()) as client,
    ):
        yield client


@pytest.fixture
async def network_aio(emulator: EmulatorHandle) -> AsyncIterator[AsyncNetworkManagementClient]:
    async with (
        emulator.endpoint.async_credential() as credential,
        AsyncNetworkManagementClient(
            credential, SUBSCRIPTION, **emulator.endpoint.sdk_kwargs(**FAST_POLLING)
        ) as client,
    ):
        yield client


@pytest.fixture
async def compute_aio(emulator: EmulatorHandle) -> AsyncIterator[AsyncComputeManagementClient]:
    async with (
        emulator.endpoint.async_credential() as credential,
        AsyncComputeManagementClient(
            credential, SUBSCRIPTION, **emulator.endpoint.sdk_kwargs()
        ) as client,
    ):
        yield client
