"""kopf's one index: which JitPolicy governs which VM port (policy handlers refuse a second
policy for the same port). Requests and the policy views requests need live in the
controller's cache instead (``reconcile/cache.py``): kopf's readiness gate costs O(N²) in
the number of indexed objects, which kept a restarted operator with thousands of requests
from handling any of them.

The index functions are ``async`` although they never await: kopf runs a plain function in
a thread pool (a thread hop per watch event), a coroutine function on the event loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from azure_jit_operator.domain.conditions import find, parse_conditions
from azure_jit_operator.domain.governance import governance_keys
from azure_jit_operator.domain.specs import JitPolicySpec, SpecError, parse_policy_spec
from azure_jit_operator.reconcile.judge import PolicyView

GOVERNANCE = "policy_governance"


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.index(
        "azurejit.dev", "v1alpha1", "jitpolicies", registry=registry, id="policy_governance"
    )
    async def policy_governance(
        name: str | None, namespace: str | None, body: kopf.Body, **_: Any
    ) -> dict[str, tuple[int, str, str]]:
        spec = _effective(body)
        if spec is None:
            return {}
        # A policy already applied to Azure keeps what it governs; among newcomers the
        # oldest wins (creation times have one-second resolution, hence the ranking).
        applied = 0 if (body.get("status") or {}).get("azurePolicyId") else 1
        holder = (applied, str(body.metadata.get("creationTimestamp", "")), f"{namespace}/{name}")
        return {key: holder for _, key in governance_keys(spec)}


def policy_view(body: Mapping[str, Any]) -> PolicyView:
    """A JitPolicy as requests need it, from a kopf body or an API read alike."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    ready = find(parse_conditions(status.get("conditions")), "Ready")
    generation = meta.get("generation")
    is_ready = (
        ready is not None
        and ready.status == "True"
        and status.get("observedGeneration") == generation
    )
    return PolicyView(
        name=str(meta.get("name", "")),
        spec=_effective(body),
        ready=is_ready,
        ready_message=ready.message if ready else "not reconciled yet",
    )


def _effective(body: Mapping[str, Any]) -> JitPolicySpec | None:
    """The spec with the VMs its selector resolved to at the last sync (from status)."""
    name = str((body.get("metadata") or {}).get("name", ""))
    try:
        spec = parse_policy_spec(body.get("spec") or {}, name=name)
    except SpecError:
        return None
    resolved = [str(n) for n in (body.get("status") or {}).get("virtualMachines") or ()]
    return spec.with_selected(resolved)
