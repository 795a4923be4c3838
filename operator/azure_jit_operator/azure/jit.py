"""JIT network access policies (Microsoft.Security, api-version 2020-01-01): read, write,
delete and initiate, mapped between SDK models and domain values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.security.v2020_01_01 import models as sdk
from azure.mgmt.security.v2020_01_01.aio.operations import JitNetworkAccessPoliciesOperations

from azure_jit_operator.domain.azure_policy import (
    AzurePolicyContent,
    AzurePolicySnapshot,
    AzurePortRule,
    AzureVmRule,
    InitiatedPort,
    InitiationRecord,
)
from azure_jit_operator.domain.durations import format_iso_duration, parse_iso_duration
from azure_jit_operator.domain.specs import AzureTarget

from .clients import AzureClients
from .errors import classify


@dataclass(frozen=True, slots=True)
class PortOpening:
    """One port of an initiate: open ``number`` to ``prefix`` until ``end``."""

    number: int
    prefix: str
    end: datetime


class JitPolicies:
    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients

    async def get(self, target: AzureTarget) -> AzurePolicySnapshot | None:
        ops = self._ops(target)
        try:
            policy = await ops.get(target.resource_group, target.location, target.policy_name)
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise classify(exc) from exc
        return to_snapshot(policy)

    async def put(self, target: AzureTarget, content: AzurePolicyContent) -> AzurePolicySnapshot:
        body = sdk.JitNetworkAccessPolicy(
            kind="Basic",
            virtual_machines=[
                sdk.JitNetworkAccessPolicyVirtualMachine(
                    id=vm.id, ports=[_port_rule(p) for p in vm.ports]
                )
                for vm in content.virtual_machines
            ],
        )
        try:
            written = await self._ops(target).create_or_update(
                target.resource_group, target.location, target.policy_name, body
            )
        except Exception as exc:
            raise classify(exc) from exc
        return to_snapshot(written)

    async def delete(self, target: AzureTarget) -> None:
        """Delete the policy; an already missing policy counts as deleted."""
        try:
            await self._ops(target).delete(
                target.resource_group, target.location, target.policy_name
            )
        except ResourceNotFoundError:
            return
        except Exception as exc:
            raise classify(exc) from exc

    async def initiate(
        self,
        target: AzureTarget,
        *,
        vm_id: str,
        ports: Sequence[PortOpening],
        justification: str,
    ) -> InitiationRecord:
        body = sdk.JitNetworkAccessPolicyInitiateRequest(
            virtual_machines=[
                sdk.JitNetworkAccessPolicyInitiateVirtualMachine(
                    id=vm_id,
                    ports=[
                        sdk.JitNetworkAccessPolicyInitiatePort(
                            number=p.number,
                            allowed_source_address_prefix=p.prefix,
                            end_time_utc=p.end,
                        )
                        for p in ports
                    ],
                )
            ],
            justification=justification,
        )
        try:
            # Initiate is not idempotent: a blind SDK retry after a lost 5xx response would
            # initiate twice. Callers retry only after reading the history for their marker.
            accepted = await self._ops(target).initiate(
                target.resource_group, target.location, target.policy_name, body, retry_total=0
            )
        except Exception as exc:
            raise classify(exc) from exc
        return _record(accepted)

    def _ops(self, target: AzureTarget) -> JitNetworkAccessPoliciesOperations:
        security = self._clients.for_subscription(target.subscription_id).security
        # The multi-API client builds this attribute dynamically; its type is the
        # 2020-01-01 operation group because the client is pinned to that version.
        return cast(JitNetworkAccessPoliciesOperations, security.jit_network_access_policies)


def to_snapshot(policy: sdk.JitNetworkAccessPolicy) -> AzurePolicySnapshot:
    return AzurePolicySnapshot(
        id=policy.id or "",
        content=AzurePolicyContent.of(
            [
                AzureVmRule(id=vm.id, ports=tuple(_domain_port(p) for p in vm.ports or ()))
                for vm in policy.virtual_machines or ()
            ]
        ),
        provisioning_state=policy.provisioning_state or "",
        initiations=tuple(_record(r) for r in policy.requests or ()),
    )


def _port_rule(port: AzurePortRule) -> sdk.JitNetworkAccessPortRule:
    prefixes = list(port.allowed_source_address_prefixes)
    single = prefixes[0] if len(prefixes) == 1 else None
    return sdk.JitNetworkAccessPortRule(
        number=port.number,
        protocol=port.protocol,
        allowed_source_address_prefix=single,
        allowed_source_address_prefixes=None if single else prefixes,
        max_request_access_duration=format_iso_duration(port.max_request_access_duration),
    )


def _domain_port(port: sdk.JitNetworkAccessPortRule) -> AzurePortRule:
    prefixes = tuple(port.allowed_source_address_prefixes or ())
    if port.allowed_source_address_prefix:
        prefixes = (*prefixes, port.allowed_source_address_prefix)
    return AzurePortRule(
        number=port.number,
        protocol=str(port.protocol),
        allowed_source_address_prefixes=prefixes,
        max_request_access_duration=parse_iso_duration(port.max_request_access_duration),
    )


def _record(request: sdk.JitNetworkAccessRequest) -> InitiationRecord:
    ports = []
    for vm in request.virtual_machines or ():
        for port in vm.ports or ():
            prefixes = tuple(port.allowed_source_address_prefixes or ())
            if port.allowed_source_address_prefix:
                prefixes = (*prefixes, port.allowed_source_address_prefix)
            ports.append(
                InitiatedPort(
                    vm_id=vm.id,
                    number=port.number,
                    source_prefixes=prefixes,
                    end_time=port.end_time_utc,
                    status=str(port.status or ""),
                    status_reason=str(port.status_reason or ""),
                )
            )
    return InitiationRecord(
        justification=request.justification or "",
        requestor=request.requestor or "",
        start_time=request.start_time_utc,
        ports=tuple(ports),
    )
