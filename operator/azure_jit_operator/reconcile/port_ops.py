"""Opening VM ports on Azure and computing what to initiate; the observation of one port's
JIT allow rules (the VM reconcile reads the NSGs and deletes rules itself)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from azure_jit_operator.azure.access import AzureAccess
from azure_jit_operator.azure.jit import PortOpening
from azure_jit_operator.domain.azure_policy import InitiationRecord
from azure_jit_operator.domain.grants import (
    Claim,
    RequestRef,
    grant_for_port,
)
from azure_jit_operator.domain.nsg import SecurityRuleView
from azure_jit_operator.domain.specs import AzureTarget

log = logging.getLogger("azure_jit_operator.ports")


@dataclass(frozen=True, slots=True)
class PortObservation:
    """The JIT allow rules found for one VM port, split by whether the grant covers them."""

    port: int
    rules: tuple[SecurityRuleView, ...]
    beyond_grant: tuple[SecurityRuleView, ...]

    @property
    def sources(self) -> list[str]:
        return [s for r in self.rules for s in r.sources]


async def initiate(
    az: AzureAccess,
    target: AzureTarget,
    *,
    vm_id: str,
    openings: Sequence[PortOpening],
    justification: str,
) -> InitiationRecord:
    record = await az.jit.initiate(target, vm_id=vm_id, ports=openings, justification=justification)
    log.info(
        "initiated JIT access on %s ports %s",
        vm_id.rsplit("/", 1)[-1],
        ",".join(str(o.number) for o in openings),
        extra={"azure_operation": "JitNetworkAccessPolicies_Initiate", "vm_id": vm_id},
    )
    return record


def openings_for(
    claims: Sequence[Claim], mine: Sequence[Claim], *, now: datetime
) -> list[PortOpening]:
    """What to initiate so that my claims are served without shortening anyone else's."""
    openings = []
    for claim in mine:
        grant = grant_for_port([*claims, claim], claim.port, now=now)
        end = grant.end if grant is not None else claim.expires_at
        openings.append(PortOpening(number=claim.port, prefix=claim.prefix, end=end))
    return openings


def narrowed_openings(
    before: Sequence[Claim], after: Sequence[Claim], ports: Iterable[int], *, now: datetime
) -> list[PortOpening]:
    """Re-initiations needed when a member leaves a shared grant that it was extending."""
    openings = []
    for port in ports:
        old = grant_for_port(before, port, now=now)
        new = grant_for_port(after, port, now=now)
        if old is not None and new is not None and new.end < old.end:
            openings.append(PortOpening(number=port, prefix=new.prefix, end=new.end))
    return openings


def claims_of(
    request: RequestRef, ports: Iterable[tuple[int, str]], expires_at: datetime
) -> list[Claim]:
    return [Claim(request, number, prefix, expires_at) for number, prefix in ports]
