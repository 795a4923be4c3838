"""Flux judges health with kstatus (sigs.k8s.io/cli-utils): run the real library (hack/kstatus)
on objects whose status the operator's domain code produced in each phase, and check that the
Flux example health-checks what exists. Without Go the kstatus tests skip locally; with
CI=true a missing kstatus fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from azure_jit_operator.domain.lifecycle import Phase
from tests.support.health import (
    NOT_READY_RECONCILING,
    NOT_READY_STALLED,
    READY,
    RECONCILING,
    STALLED,
    KstatusUnavailableError,
    in_ci,
    kstatus,
    kstatus_binary,
    policy_with,
    request_in,
)
from tests.support.repo import ROOT

FLUX_EXAMPLE = ROOT / "deploy" / "gitops" / "flux" / "azure-jit-operator.yaml"


@pytest.fixture(scope="module")
def tool() -> Path:
    try:
        return kstatus_binary()
    except KstatusUnavailableError as exc:
        if in_ci():
            pytest.fail(f"{exc} [CI=true: a missing kstatus is a failure]", pytrace=False)
        pytest.skip(str(exc))


@pytest.mark.parametrize(
    ("phase", "reason", "expected"),
    [
        pytest.param(Phase.PENDING, "WaitingForPolicy", "InProgress", id="pending is in progress"),
        pytest.param(Phase.ACTIVE, "Opened", "Current", id="active is current"),
        pytest.param(Phase.EXPIRED, "Expired", "Current", id="expired is current"),
        pytest.param(Phase.REVOKED, "Revoked", "Current", id="revoked is current"),
        pytest.param(Phase.DENIED, "DurationExceedsMaximum", "Failed", id="denied has failed"),
        pytest.param(Phase.FAILED, "AzureRejected", "Failed", id="failed has failed"),
    ],
)
def test_kstatus_reads_a_request_s_phase_from_its_conditions(
    tool: Path, phase: Phase, reason: str, expected: str
) -> None:
    [judged] = kstatus(tool, [request_in(phase, reason=reason, message=f"{reason} happened")])
    assert judged["status"] == expected
    if expected != "Current":
        assert f"{reason} happened" in judged["message"]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(policy_with(READY), "Current", id="a synced policy is current"),
        pytest.param(
            policy_with(NOT_READY_STALLED, STALLED), "Failed", id="a stalled policy has failed"
        ),
        pytest.param(
            policy_with(NOT_READY_RECONCILING, RECONCILING),
            "InProgress",
            id="a reconciling policy is in progress",
        ),
        pytest.param(
            policy_with(READY, generation=3, observed=2),
            "InProgress",
            id="a policy whose new spec is not seen yet is in progress",
        ),
    ],
)
def test_kstatus_reads_a_policy_s_readiness_and_generation(
    tool: Path, policy: dict[str, Any], expected: str
) -> None:
    [judged] = kstatus(tool, [policy])
    assert judged["status"] == expected


def test_the_flux_example_waits_for_the_operator_and_health_checks_policies() -> None:
    documents = list(yaml.safe_load_all(FLUX_EXAMPLE.read_text()))
    kustomizations = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Kustomization"}
    operator = kustomizations["azure-jit-operator"]
    assert (ROOT / operator["spec"]["path"] / "kustomization.yaml").is_file()
    assert operator["spec"]["wait"] is True
    assert operator["spec"]["prune"] is True
    policies = kustomizations["team-web-jit-policies"]
    assert policies["spec"]["dependsOn"] == [{"name": "azure-jit-operator"}]
    checked = {(c["apiVersion"], c["kind"]) for c in policies["spec"]["healthChecks"]}
    assert checked == {("azurejit.dev/v1alpha1", "JitPolicy")}
    source = next(d for d in documents if d["kind"] == "GitRepository")
    assert "!/crds/" in source["spec"]["ignore"], "the overlays include crds/"
    assert "!/deploy/" in source["spec"]["ignore"]
