"""Policies in different subscriptions reconcile independently: while ARM throttles one
subscription (every call answered 429 with a long Retry-After), a policy and a request in
the other subscription go through at normal speed."""

import time
from typing import Any

from tests.support.emulator import SECOND_SUBSCRIPTION
from tests.support.manifests import SUBSCRIPTION, manifest, port_rule, request_manifest
from tests.support.operator import JitWorld, wait_for


def policy(name: str, *, subscription: str, group: str, vm: str) -> dict[str, Any]:
    spec = {
        "azure": {"subscriptionId": subscription, "resourceGroup": group, "location": "westeurope"},
        "virtualMachines": [{"name": vm, "ports": [port_rule(22)]}],
    }
    return manifest("JitPolicy", name, spec)


def test_a_throttled_subscription_does_not_delay_the_other(jit: JitWorld) -> None:
    jit.admin.add_fault("*", status=429, retry_after=30, times=None, subscription=SUBSCRIPTION)
    jit.apply(policy("throttled", subscription=SUBSCRIPTION, group="rg-web", vm="vm-web-01"))
    started = time.monotonic()
    jit.apply(
        policy("free", subscription=SECOND_SUBSCRIPTION, group="rg-analytics", vm="vm-analytics-01")
    )
    jit.wait_policy_ready("free", timeout=15)
    jit.apply(request_manifest("ssh", policy="free", vm="vm-analytics-01", duration="30m"))
    jit.wait_phase("ssh", "Active", timeout=15)
    elapsed = time.monotonic() - started
    # The other subscription's Retry-After alone is 30s; nothing here waited for it.
    assert elapsed < 15, f"the free subscription took {elapsed:.1f}s"
    throttled = jit.condition("JitPolicy", "throttled", "Ready")
    assert throttled is None or throttled["status"] == "False"

    jit.admin.clear_faults()
    wait_for(
        lambda: (jit.condition("JitPolicy", "throttled", "Ready") or {}).get("status") == "True",
        timeout=90,
        what="the throttled policy to recover once ARM lets it through",
    )
