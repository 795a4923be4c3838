"""The gauge behind the approvers' alert: requests waiting for approval, per namespace and
JitPolicy, from the statuses the operator writes; no series once none waits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from azure_jit_operator.domain.grants import RequestRef
from azure_jit_operator.metrics import REGISTRY
from azure_jit_operator.reconcile.awaiting_approval import AwaitingApproval

NAME = "azure_jit_requests_awaiting_approval"
A, B, C = (RequestRef("team-web", n, f"uid-{n}") for n in ("a", "b", "c"))


def value(namespace: str, policy: str) -> float | None:
    return REGISTRY.get_sample_value(NAME, {"namespace": namespace, "policy": policy})


@pytest.fixture
def awaiting() -> Iterator[AwaitingApproval]:
    gauge = AwaitingApproval()
    yield gauge
    gauge.clear()


def test_waiting_requests_are_counted_and_the_series_goes_with_the_last(
    awaiting: AwaitingApproval,
) -> None:
    awaiting.update(A, namespace="team-web", policy="web-admins", waiting=True)
    awaiting.update(B, namespace="team-web", policy="web-admins", waiting=True)
    awaiting.update(B, namespace="team-web", policy="web-admins", waiting=True)  # a re-judge
    awaiting.update(C, namespace="team-web", policy="db-admins", waiting=True)
    assert (value("team-web", "web-admins"), value("team-web", "db-admins")) == (2, 1)
    awaiting.update(A, namespace="team-web", policy="web-admins", waiting=False)  # approved
    awaiting.forget(C)  # deleted
    assert (value("team-web", "web-admins"), value("team-web", "db-admins")) == (1, None)
    awaiting.update(B, namespace="team-web", policy="web-admins", waiting=False)
    assert value("team-web", "web-admins") is None


def test_a_paused_replica_reports_nothing(awaiting: AwaitingApproval) -> None:
    awaiting.update(A, namespace="team-web", policy="web-admins", waiting=True)
    awaiting.clear()
    assert value("team-web", "web-admins") is None
    assert awaiting.count("team-web", "web-admins") == 0
