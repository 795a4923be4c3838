"""Argo CD's health check for JitAccessSchedule (deploy/gitops/argocd/health/): Healthy while
it schedules (or is suspended), Progressing while it waits for approval or for the operator,
Degraded when Stalled (a problem a person must fix)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.health import argo_health
from tests.support.manifests import API_VERSION


def schedule(*conditions: tuple[str, str, str], generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "JitAccessSchedule",
        "metadata": {"name": "maint", "generation": generation},
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "reason": r,
                    "message": f"{r} message",
                    "observedGeneration": 1,
                }
                for t, s, r in conditions
            ],
        },
    }


@pytest.mark.parametrize(
    ("obj", "health"),
    [
        (schedule(("Ready", "True", "Scheduling"), ("Stalled", "False", "Progressing")), "Healthy"),
        (schedule(("Ready", "True", "Suspended"), ("Stalled", "False", "Progressing")), "Healthy"),
        (
            schedule(("Ready", "False", "WaitingForApproval"), ("Stalled", "False", "Progressing")),
            "Progressing",
        ),
        (
            schedule(("Ready", "False", "TemplateDenied"), ("Stalled", "True", "TemplateDenied")),
            "Degraded",
        ),
        (schedule(("Ready", "True", "Scheduling"), generation=2), "Progressing"),
    ],
    ids=[
        "scheduling is healthy",
        "suspended is healthy",
        "waiting for approval is progress",
        "a template the policy denies is degraded",
        "a newer spec the operator has not seen is progressing",
    ],
)
def test_a_schedule_is_judged_by_ready_stalled_and_generation(
    obj: dict[str, Any], health: str
) -> None:
    assert argo_health(obj)["status"] == health
