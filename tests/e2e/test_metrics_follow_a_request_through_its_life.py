"""The operator's /metrics, scraped like Prometheus does, while a request lives: open_ports is
1 for the VM port while it is Active and 0 once it expired; the outcome counters, the open
latency and close lag histograms and the Azure call counters move with it; a port Azure does
not close is reported open past expiry until the operator closed it.

Metrics are process-global and several operators run one after another in this pytest
process: assertions select the test's own namespace label, or compare two scrapes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld, ts, wait_for
from tests.support.prometheus import Scrape, http_status, scrape

POLICY = policy_manifest(
    "web-admins",
    vms={"vm-web-01": [port_rule(22, prefixes=["198.51.100.0/24"], max_duration="3h")]},
)
OPEN = "azure_jit_open_ports"
OUTCOMES = "azure_jit_requests_total"


def _metrics(jit: JitWorld) -> Scrape:
    return scrape(jit.operator.metrics_port)


def _port_22(jit: JitWorld) -> dict[str, str]:
    return {"namespace": jit.namespace, "policy": "web-admins", "vm": "vm-web-01", "port": "22"}


def _delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.total(name, **labels) - before.total(name, **labels)


def _scrape_until(jit: JitWorld, holds: Callable[[Scrape], bool], *, what: str) -> Scrape:
    """Scrape until ``holds``: the operator updates its metrics right after the status write
    that the test saw, so the first scrape may still be a moment early."""
    last: list[Scrape] = []

    def scraped() -> Scrape | None:
        last[:] = [_metrics(jit)]
        return last[0] if holds(last[0]) else None

    try:
        return wait_for(scraped, timeout=10, what=what)
    except AssertionError as exc:
        shown = [s for s in last[0].samples if s.name.startswith("azure_jit_")] if last else []
        raise AssertionError(f"{exc}; last scrape: {shown}") from None


def test_open_ports_is_1_while_the_request_is_active_and_0_after_expiry(jit: JitWorld) -> None:
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    before = _metrics(jit)
    assert before.value(OPEN, **_port_22(jit)) is None  # nothing known about it yet

    jit.apply(request_manifest("ssh-inc-4711", duration="1h"))
    active = jit.wait_phase("ssh-inc-4711", "Active")
    during = _scrape_until(
        jit,
        lambda s: _delta(before, s, "azure_jit_request_open_seconds_count") == 1,
        what="the open latency to be observed",
    )
    assert during.value(OPEN, **_port_22(jit)) == 1
    assert during.value(OUTCOMES, namespace=jit.namespace, policy="web-admins", outcome="Active")
    opened_in = _delta(before, during, "azure_jit_request_open_seconds_sum")
    assert 0 < opened_in < 30

    jit.jump(timedelta(hours=1, seconds=1))
    expired = jit.wait_phase("ssh-inc-4711", "Expired")
    after = _scrape_until(
        jit, lambda s: s.value(OPEN, **_port_22(jit)) == 0, what="open_ports to drop to 0"
    )
    assert after.value(OUTCOMES, namespace=jit.namespace, policy="web-admins", outcome="Expired")
    assert after.value("azure_jit_ports_open_past_expiry") == 0
    assert _delta(during, after, "azure_jit_close_lag_seconds_count") == 1
    lag = _delta(during, after, "azure_jit_close_lag_seconds_sum")
    recorded = (ts(expired["closedAt"]) - ts(active["expiresAt"])).total_seconds()
    assert lag == pytest.approx(recorded, abs=1.0)  # status has second resolution
    assert 0 < lag <= jit.operator.settings.close_grace.total_seconds()


def test_every_azure_call_is_counted_by_operation_and_status_code(jit: JitWorld) -> None:
    before = _metrics(jit)
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.admin.add_fault("JitNetworkAccessPolicies_Initiate", status=429, retry_after=0, times=1)
    jit.apply(request_manifest("ssh", duration="30m"))
    jit.wait_phase("ssh", "Active")

    api = "azure_jit_azure_api_requests_total"
    checked = [
        "JitNetworkAccessPolicies_Get",
        "JitNetworkAccessPolicies_CreateOrUpdate",
        "JitNetworkAccessPolicies_Initiate",
        "NetworkSecurityGroups_Get",
    ]

    def disagreements() -> dict[str, tuple[dict[str, float], dict[str, float]]]:
        # A call in flight is counted by Azure on arrival, by the operator on the answer.
        after = _metrics(jit)
        seen_by_azure = jit.admin.calls()
        found = {}
        for operation in checked:
            expected = {code: float(n) for code, n in seen_by_azure[operation]["by_status"].items()}
            counted = {
                code: _delta(before, after, api, operation=operation, code=code)
                for code in {
                    *expected,
                    *(s.labels["code"] for s in after.series(api, operation=operation)),
                }
            }
            counted = {code: n for code, n in counted.items() if n or code in expected}
            if counted != expected:
                found[operation] = (counted, expected)
        return found

    try:
        wait_for(lambda: not disagreements(), timeout=10, what="the counts to agree")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: (operator, Azure) = {disagreements()}") from None
    after = _metrics(jit)
    initiate = "JitNetworkAccessPolicies_Initiate"
    assert _delta(before, after, api, operation=initiate, code="429") == 1
    durations = "azure_jit_azure_api_duration_seconds_count"
    assert _delta(before, after, durations, operation=initiate) == 2


def test_outcomes_are_counted_per_policy_and_unknown_policies_share_one_label(
    jit: JitWorld,
) -> None:
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("too-long", duration="4h"))
    jit.apply(request_manifest("orphan", policy="policy-from-a-typo"))
    jit.wait_phase("too-long", "Denied")
    jit.wait_phase("orphan", "Pending")
    jit.jump(timedelta(seconds=31))  # past the grace a request gets to wait for its policy
    jit.wait_phase("orphan", "Denied")

    def outcomes(scraped: Scrape) -> set[tuple[str, str, float]]:
        return {
            (s.labels["policy"], s.labels["outcome"], s.value)
            for s in scraped.series(OUTCOMES, namespace=jit.namespace)
        }

    counted = _scrape_until(
        jit,
        lambda s: len(outcomes(s)) == 2,
        what="both outcomes to be counted",
    )
    assert outcomes(counted) == {("web-admins", "Denied", 1.0), ("<unknown>", "Denied", 1.0)}
    # Labels carry no request names, no justification, no user input beyond known policies.
    for sample in counted.samples:
        values = " ".join(sample.labels.values())
        assert "policy-from-a-typo" not in values
        assert "too-long" not in values
        assert "INC-4711" not in values


def test_a_request_waiting_for_its_policy_shows_as_the_oldest_pending(jit: JitWorld) -> None:
    body = jit.apply(request_manifest("early"))
    jit.wait_phase("early", "Pending")
    pending = "azure_jit_oldest_pending_request_creation_timestamp_seconds"
    created = ts(body["metadata"]["creationTimestamp"]).timestamp()
    waiting = {"namespace": jit.namespace, "reason": "WaitingForPolicy"}
    shown = _scrape_until(
        jit, lambda s: s.value(pending, **waiting) is not None, what="the pending request"
    )
    assert shown.value(pending, **waiting) == created

    jit.apply(POLICY)
    jit.wait_phase("early", "Active", timeout=30)
    _scrape_until(
        jit,
        lambda s: s.series(pending, namespace=jit.namespace) == [],
        what="no request to be pending any more",
    )


@pytest.mark.parametrize(
    "operator_overrides", [{"close_grace": timedelta(seconds=10)}], ids=["10s grace"]
)
@pytest.mark.parametrize(
    ("operation", "status", "code"),
    [
        # The operator may not delete security rules (a missing Azure permission).
        pytest.param("SecurityRules_Delete", 403, "AuthorizationFailed", id="delete refused"),
        # It cannot even read the NSG: it cannot tell, so the port counts as open.
        pytest.param("NetworkSecurityGroups_Get", 503, "ServiceUnavailable", id="NSG unreadable"),
    ],
)
def test_a_port_azure_leaves_open_is_reported_past_expiry_until_the_operator_closes_it(
    jit: JitWorld, operation: str, status: int, code: str
) -> None:
    jit.admin.update_settings(never_revoke=True)
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("ssh", duration="30m"))
    jit.wait_phase("ssh", "Active")
    jit.admin.add_fault(operation, status=status, code=code, times=None)

    jit.jump(timedelta(minutes=30, seconds=11))  # past expiresAt + close grace
    reported = wait_for(
        lambda: _metrics(jit).value("azure_jit_ports_open_past_expiry") == 1,
        timeout=20,
        what="ports_open_past_expiry to report the port Azure left open",
    )
    assert reported
    assert _metrics(jit).value(OPEN, **_port_22(jit)) == 1  # still open, as observed
    assert jit.status("JitAccessRequest", "ssh")["phase"] == "Active"

    jit.admin.clear_faults()
    jit.wait_phase("ssh", "Expired", timeout=60)
    after = _scrape_until(
        jit, lambda s: s.value(OPEN, **_port_22(jit)) == 0, what="open_ports to drop to 0"
    )
    assert after.value("azure_jit_ports_open_past_expiry") == 0
    assert jit.allow_rules("vm-web-01") == []


def test_probes_answer_once_the_operator_runs(jit: JitWorld) -> None:
    assert http_status(jit.operator.metrics_port, "/healthz") == (200, "ok")
    assert http_status(jit.operator.metrics_port, "/readyz") == (200, "ready")


def test_deleting_a_request_that_names_a_missing_policy_counts_it_under_unknown(
    jit: JitWorld,
) -> None:
    jit.apply(request_manifest("orphan", policy="policy-from-a-typo"))
    jit.wait_phase("orphan", "Pending")
    # Deleted once the operator guards it (before that, it goes without the operator).
    wait_for(
        lambda: (
            "azurejit.dev/finalizer"
            in (
                (jit.get("JitAccessRequest", "orphan") or {}).get("metadata", {}).get("finalizers")
                or []
            )
        ),
        timeout=30,
        what="the operator's finalizer on the request",
    )
    jit.delete("JitAccessRequest", "orphan")
    jit.wait_gone("JitAccessRequest", "orphan")

    revoked = _metrics(jit).series(OUTCOMES, namespace=jit.namespace)
    assert {(s.labels["policy"], s.labels["outcome"]) for s in revoked} == {
        ("<unknown>", "Revoked")
    }
