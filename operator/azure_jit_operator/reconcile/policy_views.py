"""Views of a JitPolicy body for the controller's cache: what requests need of it, and what
it governs (a second policy for the same VM port is refused). No kopf index: kopf's readiness
gate costs O(N²) in the number of indexed objects, which kept a restarted operator with
thousands of objects from handling any of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure_jit_operator.domain.conditions import find, parse_conditions
from azure_jit_operator.domain.governance import governance_keys
from azure_jit_operator.domain.specs import JitPolicySpec, SpecError, parse_policy_spec
from azure_jit_operator.reconcile.judge import PolicyView


def governance_holders(body: Mapping[str, Any]) -> list[tuple[str, tuple[int, str, str]]]:
    """What a JitPolicy governs (each key with its claim to it), for the controller's index.

    A policy already applied to Azure keeps what it governs; among newcomers the oldest wins
    (creation times have one-second resolution, hence the ranking)."""
    spec = _effective(body)
    if spec is None:
        return []
    meta = body.get("metadata") or {}
    applied = 0 if (body.get("status") or {}).get("azurePolicyId") else 1
    holder = (
        applied,
        str(meta.get("creationTimestamp", "")),
        f"{meta.get('namespace', '')}/{meta.get('name', '')}",
    )
    return [(key, holder) for _, key in governance_keys(spec)]


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
