"""Opening and closing VM ports on Azure, and observing what the NSGs really allow.

Initiates on one VM take turns (``PortBook.initiating``); deletes take no turn and never
wait for one: a close is never queued behind another request's open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from azure_jit_operator.azure.access import AzureAccess
from azure_jit_operator.azure.jit import PortOpening
from azure_jit_operator.domain.azure_policy import InitiationRecord
from azure_jit_operator.domain.grants import (
    Claim,
    PortGrant,
    RequestRef,
    grant_for_port,
    sources_beyond_grant,
)
from azure_jit_operator.domain.nsg import SecurityRuleView, jit_allow_rules
from azure_jit_operator.domain.specs import AzureTarget
from azure_jit_operator.reconcile.runtime import Runtime

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


async def observe(
    rt: Runtime, az: AzureAccess, vm_id: str, ports: Iterable[int], *, now: datetime
) -> dict[int, PortObservation]:
    """Read the VM's NSGs once and classify the JIT allow rules of each port."""
    network = await az.vm_network(vm_id, now=now)
    rule_lists = await asyncio.gather(*(az.network.rules(nsg) for nsg in network.nsg_ids))
    rules = [r for rs in rule_lists for r in rs]
    claims = rt.ports.claims(vm_id)
    result = {}
    for port in ports:
        grant = grant_for_port(claims, port, now=now)
        found = jit_allow_rules(rules, port=port, network=network)
        result[port] = PortObservation(
            port=port,
            rules=tuple(found),
            beyond_grant=tuple(r for r in found if sources_beyond_grant(r.sources, grant)),
        )
    return result


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


async def close_beyond_grants(
    rt: Runtime,
    az: AzureAccess,
    vm_id: str,
    ports: Iterable[int],
    *,
    now: datetime,
    observed: dict[int, PortObservation] | None = None,
) -> int:
    """Delete every JIT allow rule on these ports that no live claim covers; return how many.

    Azure JIT has no revoke API: deleting the allow rule is how access ends early or when
    Azure is late. Rules of other live requests (same source) are left alone. ``observed``:
    a read the caller just made (a close reads the NSG at expiry anyway), else one is made.
    """
    if observed is None:
        observed = await observe(rt, az, vm_id, ports, now=now)
    # Only rules whose name proves they are JIT's; one recognised by its description alone
    # stays (and keeps the close reporting the port open until Azure removes it).
    doomed = {(r.nsg_id, r.name) for o in observed.values() for r in o.beyond_grant if r.deletable}
    await asyncio.gather(*(az.network.delete_rule(nsg, name) for nsg, name in doomed))
    if doomed:
        log.info(
            "deleted %d JIT allow rule(s) on %s",
            len(doomed),
            vm_id.rsplit("/", 1)[-1],
            extra={"azure_operation": "SecurityRules_Delete", "vm_id": vm_id},
        )
    return len(doomed)


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


def grants(
    claims: Sequence[Claim], ports: Iterable[int], *, now: datetime
) -> dict[int, PortGrant | None]:
    return {port: grant_for_port(claims, port, now=now) for port in ports}


def claims_of(
    request: RequestRef, ports: Iterable[tuple[int, str]], expires_at: datetime
) -> list[Claim]:
    return [Claim(request, number, prefix, expires_at) for number, prefix in ports]
