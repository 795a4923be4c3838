"""Argo CD's health checks for JitPolicy and JitAccessRequest (deploy/gitops/argocd/health/),
run in a real Lua 5.1 interpreter on objects whose status the operator's domain code produced
in each phase; and the argocd-cm patch carries exactly those scripts."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from azure_jit_operator.domain.lifecycle import Phase
from tests.support.health import (
    ARGOCD_HEALTH,
    NOT_READY_RECONCILING,
    NOT_READY_STALLED,
    READY,
    RECONCILING,
    STALLED,
    argo_health,
    policy_with,
    request_in,
)
from tests.support.manifests import policy_manifest, request_manifest


@pytest.mark.parametrize(
    ("phase", "reason", "message", "health"),
    [
        pytest.param(
            Phase.PENDING,
            "WaitingForPolicy",
            "JitPolicy web-admins is not Ready",
            "Progressing",
            id="a pending request is progressing",
        ),
        pytest.param(
            Phase.ACTIVE, "Opened", "port 22 open", "Healthy", id="an active request is healthy"
        ),
        pytest.param(
            Phase.EXPIRED,
            "Expired",
            "port 22 closed at expiry",
            "Healthy",
            id="an expired request finished as intended",
        ),
        pytest.param(
            Phase.REVOKED,
            "Revoked",
            "closed before expiry",
            "Healthy",
            id="a revoked request finished as intended",
        ),
        pytest.param(
            Phase.DENIED,
            "SourcePrefixNotAllowed",
            "source 192.0.2.10 is not allowed",
            "Degraded",
            id="a denied request is degraded",
        ),
        pytest.param(
            Phase.FAILED,
            "AzureRejected",
            "Azure refused the initiate",
            "Degraded",
            id="a failed request is degraded",
        ),
    ],
)
def test_a_request_is_judged_by_its_phase(
    phase: Phase, reason: str, message: str, health: str
) -> None:
    judged = argo_health(request_in(phase, reason=reason, message=message))
    assert judged["status"] == health
    assert phase.value in judged["message"]
    assert reason in judged["message"]


def test_an_active_request_says_until_when_it_is_open() -> None:
    judged = argo_health(request_in(Phase.ACTIVE, reason="Opened", message="port 22 open"))
    assert "open until 2026-11-23T13:00:00Z" in judged["message"]


def test_a_request_the_operator_has_not_seen_yet_is_progressing() -> None:
    judged = argo_health(request_manifest("fresh", namespace="team-web"))
    assert judged["status"] == "Progressing"


@pytest.mark.parametrize(
    ("policy", "health", "fragment"),
    [
        pytest.param(
            policy_with(READY), "Healthy", "matches the spec", id="a synced policy is healthy"
        ),
        pytest.param(
            policy_with(NOT_READY_STALLED, STALLED),
            "Degraded",
            "AzureForbidden",
            id="a stalled policy is degraded",
        ),
        pytest.param(
            policy_with(NOT_READY_RECONCILING, RECONCILING),
            "Progressing",
            "throttling",
            id="a reconciling policy is progressing",
        ),
        pytest.param(
            policy_with(READY, generation=3, observed=2),
            "Progressing",
            "generation 3",
            id="a ready policy whose new spec is not seen yet is progressing",
        ),
        pytest.param(
            policy_manifest("web-admins", namespace="team-web"),
            "Progressing",
            "Waiting for the operator",
            id="a policy without status is progressing",
        ),
    ],
)
def test_a_policy_is_judged_by_its_conditions_and_generation(
    policy: dict[str, Any], health: str, fragment: str
) -> None:
    judged = argo_health(policy)
    assert judged["status"] == health
    assert fragment in judged["message"]


def test_a_ready_condition_from_an_older_generation_is_not_healthy() -> None:
    policy = policy_with(READY, generation=2)
    policy["status"]["conditions"][0]["observedGeneration"] = 1
    assert argo_health(policy)["status"] == "Progressing"


def test_the_argocd_cm_patch_carries_exactly_the_scripts_in_health() -> None:
    patch = yaml.safe_load((ARGOCD_HEALTH.parent / "argocd-cm-health.yaml").read_text())
    assert patch["metadata"] == {
        "name": "argocd-cm",
        "namespace": "argocd",
        "labels": {"app.kubernetes.io/part-of": "argocd"},
    }
    scripts = {
        f"resource.customizations.health.{path.stem}": path.read_text()
        for path in sorted(ARGOCD_HEALTH.glob("*.lua"))
    }
    assert patch["data"] == scripts
