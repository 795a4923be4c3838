"""Flux (kstatus, the real sigs.k8s.io/cli-utils library) judges JitAccessSchedules with the
conditions the operator writes: Current while scheduling or suspended, InProgress while
waiting for approval, Failed when a person must fix something."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.health import KstatusUnavailableError, in_ci, kstatus, kstatus_binary
from tests.support.schedule_health import schedule_with


@pytest.fixture(scope="module")
def tool() -> Path:
    try:
        return kstatus_binary()
    except KstatusUnavailableError as exc:
        if in_ci():
            pytest.fail(f"{exc} [CI=true: a missing kstatus is a failure]", pytrace=False)
        pytest.skip(str(exc))


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("True", "Scheduling", "Current"),
        ("True", "Suspended", "Current"),
        ("False", "WaitingForApproval", "InProgress"),
        ("False", "PolicyNotFound", "Failed"),
        ("False", "DeniedByApprover", "Failed"),
    ],
    ids=[
        "scheduling is current",
        "suspended is current",
        "waiting for approval is in progress",
        "a missing policy has failed",
        "a denied schedule has failed",
    ],
)
def test_kstatus_reads_a_schedule_from_its_conditions(
    tool: Path, status: str, reason: str, expected: str
) -> None:
    [judged] = kstatus(tool, [schedule_with(status, reason)])
    assert judged["status"] == expected
