"""JitAccessSchedules with the conditions the operator's own code writes, for the health
tests (Argo CD's Lua check, Flux's kstatus)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from azure_jit_operator.domain.conditions import Condition
from azure_jit_operator.reconcile.schedule_reconcile import schedule_conditions
from tests.support.manifests import API_VERSION


def schedule_with(
    status: str, reason: str, *, generation: int = 1, observed: int = 1
) -> dict[str, Any]:
    conditions, _ = schedule_conditions(
        (),
        Condition("Ready", status, reason, f"{reason} happened"),
        approval=None,
        generation=observed,
        now=datetime(2026, 12, 1, 8, tzinfo=UTC),
    )
    return {
        "apiVersion": API_VERSION,
        "kind": "JitAccessSchedule",
        "metadata": {
            "name": "maint",
            "namespace": "team-web",
            "generation": generation,
            "uid": "6f1c0a4e-0000-4000-8000-000000000002",
            "creationTimestamp": "2026-11-23T11:00:00Z",
        },
        "spec": {},
        "status": {
            "observedGeneration": observed,
            "conditions": [c.to_dict() for c in conditions],
        },
    }
