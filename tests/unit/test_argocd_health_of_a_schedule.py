"""Argo CD's health check for JitAccessSchedule (deploy/gitops/argocd/health/), on schedules
with the conditions the operator writes: Healthy while it schedules (or is suspended),
Progressing while it waits for approval or for the operator, Degraded when Stalled."""

from __future__ import annotations

import pytest

from tests.support.health import argo_health
from tests.support.schedule_health import schedule_with


@pytest.mark.parametrize(
    ("status", "reason", "generation", "health"),
    [
        ("True", "Scheduling", 1, "Healthy"),
        ("True", "Suspended", 1, "Healthy"),
        ("False", "WaitingForApproval", 1, "Progressing"),
        ("False", "TemplateDenied", 1, "Degraded"),
        ("False", "InvalidSpec", 1, "Degraded"),
        ("True", "Scheduling", 2, "Progressing"),
    ],
    ids=[
        "scheduling is healthy",
        "suspended is healthy",
        "waiting for approval is progress",
        "a template the policy denies is degraded",
        "an invalid spec is degraded",
        "a newer spec the operator has not seen is progressing",
    ],
)
def test_a_schedule_is_judged_by_its_conditions_and_generation(
    status: str, reason: str, generation: int, health: str
) -> None:
    judged = argo_health(schedule_with(status, reason, generation=generation))
    assert judged["status"] == health
    if health == "Degraded":
        assert f"{reason} happened" in judged["message"]
