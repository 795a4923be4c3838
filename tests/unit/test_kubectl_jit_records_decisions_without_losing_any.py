"""``approve`` / ``deny`` append the caller's own entry with a JSON patch that tests what it
extends, retry when someone else wrote first, and pass any other refusal on unchanged."""

from datetime import UTC, datetime
from typing import Any

import pytest

from azure_jit_operator.kubectl_jit.client import CliError
from azure_jit_operator.kubectl_jit.decisions import (
    append_operations,
    decision_entry,
    record_decision,
)

NOW = datetime(2026, 11, 23, 16, 0, 7, 123456, tzinfo=UTC)
BOB = {"user": "bob", "decision": "Approved", "time": "2026-11-23T15:59:00Z"}


def test_an_entry_is_the_callers_decision_at_now_to_the_second() -> None:
    assert decision_entry(user="carol", decision="Denied", reason="freeze", now=NOW) == {
        "user": "carol",
        "decision": "Denied",
        "time": "2026-11-23T16:00:07Z",
        "reason": "freeze",
    }
    assert "reason" not in decision_entry(user="carol", decision="Approved", reason="", now=NOW)


def test_an_existing_list_is_tested_then_extended() -> None:
    entry = {"user": "carol", "decision": "Approved", "time": "t"}
    request = {"metadata": {"resourceVersion": "7"}, "status": {"approvals": [BOB]}}
    assert append_operations(request, entry) == [
        {"op": "test", "path": "/status/approvals", "value": [BOB]},
        {"op": "add", "path": "/status/approvals/-", "value": entry},
    ]


def test_without_a_list_the_patch_creates_it_guarded_by_the_resource_version() -> None:
    entry = {"user": "carol", "decision": "Approved", "time": "t"}
    with_status = {"metadata": {"resourceVersion": "7"}, "status": {"phase": "Pending"}}
    assert append_operations(with_status, entry) == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "add", "path": "/status/approvals", "value": [entry]},
    ]
    fresh = {"metadata": {"resourceVersion": "3"}}
    assert append_operations(fresh, entry) == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "3"},
        {"op": "add", "path": "/status", "value": {"approvals": [entry]}},
    ]


class StubCluster:
    """Answers reads from a list of versions; patches fail as scripted."""

    namespace = "team-web"

    def __init__(self, versions: list[dict[str, Any]], failures: list[CliError]) -> None:
        self.versions = versions
        self.failures = failures
        self.reads = 0
        self.patches: list[list[dict[str, Any]]] = []

    def username(self) -> str:
        return "carol"

    def get_request_status(self, name: str) -> dict[str, Any] | None:
        version = self.versions[min(self.reads, len(self.versions) - 1)]
        self.reads += 1
        return version

    def patch_request_status(self, name: str, operations: list[dict[str, Any]]) -> None:
        self.patches.append(operations)
        if self.failures:
            raise self.failures.pop(0)


def pending(version: str, approvals: list[dict[str, str]] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Pending"}
    if approvals is not None:
        status["approvals"] = approvals
    return {"metadata": {"resourceVersion": version}, "status": status}


def test_a_failed_test_because_bob_wrote_first_is_retried_on_top_of_his_entry() -> None:
    stale = CliError("Error from server (Invalid): the server rejected our request", status=422)
    cluster = StubCluster(
        [pending("1"), pending("2", [BOB]), pending("2", [BOB])],
        failures=[stale],
    )
    user = record_decision(cluster, "ssh", decision="Approved", reason="", now=lambda: NOW)  # type: ignore[arg-type]
    assert user == "carol"
    assert len(cluster.patches) == 2
    assert cluster.patches[-1][0] == {"op": "test", "path": "/status/approvals", "value": [BOB]}


def test_a_refusal_of_the_entry_itself_is_passed_on_word_for_word() -> None:
    refused = CliError(
        'Error from server (Forbidden): admission webhook "guard-approvals.azurejit.dev" denied '
        "the request: the requester cannot approve or deny their own request",
        status=403,
    )
    cluster = StubCluster([pending("1")], failures=[refused])
    with pytest.raises(CliError) as raised:
        record_decision(cluster, "ssh", decision="Approved", reason="", now=lambda: NOW)  # type: ignore[arg-type]
    assert raised.value is refused
    assert len(cluster.patches) == 1


def test_an_invalid_patch_on_an_unchanged_request_is_not_retried() -> None:
    invalid = CliError(
        "Error from server (Invalid): status.approvals[0].reason: Too long", status=422
    )
    cluster = StubCluster([pending("1")], failures=[invalid])
    with pytest.raises(CliError) as raised:
        record_decision(cluster, "ssh", decision="Denied", reason="x", now=lambda: NOW)  # type: ignore[arg-type]
    assert raised.value is invalid
    assert len(cluster.patches) == 1


def test_a_request_that_keeps_changing_gives_up_after_five_attempts() -> None:
    conflict = CliError("Error from server (Conflict): ...", status=409)
    versions = [pending(str(n), [BOB] * n) for n in range(1, 20)]
    cluster = StubCluster(versions, failures=[conflict] * 10)
    with pytest.raises(CliError, match="kept changing \\(5 attempts\\); try again"):
        record_decision(cluster, "ssh", decision="Approved", reason="", now=lambda: NOW)  # type: ignore[arg-type]
    assert len(cluster.patches) == 5


@pytest.mark.parametrize("phase", ["Active", "Denied", "Expired", "Revoked", "Failed"])
def test_only_a_pending_request_takes_decisions(phase: str) -> None:
    cluster = StubCluster(
        [{"metadata": {"resourceVersion": "1"}, "status": {"phase": phase, "message": "m"}}], []
    )
    with pytest.raises(CliError, match=f"jitaccessrequest/ssh is {phase} \\(m\\): decisions"):
        record_decision(cluster, "ssh", decision="Approved", reason="", now=lambda: NOW)  # type: ignore[arg-type]
    assert cluster.patches == []


def test_a_missing_request_says_where_it_looked() -> None:
    class Missing(StubCluster):
        def get_request_status(self, name: str) -> dict[str, Any] | None:
            return None

    with pytest.raises(CliError, match="jitaccessrequest/ssh not found in namespace team-web"):
        record_decision(Missing([], []), "ssh", decision="Approved", reason="", now=lambda: NOW)  # type: ignore[arg-type]
