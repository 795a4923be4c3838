"""Azure API economy: ARM calls per request lifecycle and per policy reconcile, attributed
exactly by the operator's probe (every call is tagged with the request or policy whose
handler made it), cross-checked with the emulator's own call counts.

Phase A (one operator, default settings):
  - JitPolicies created (first sync: GET + PUT each);
  - requests of 1m, Azure revoking on time: ten on VMs nobody touched yet (cold: the VM ->
    NSG topology is resolved), ten on the same VMs right after (warm: cached for 10 min),
    one with three ports; then ten with Azure never revoking (the operator deletes the rule);
  - ten long requests stay Active for phase B.
Phase B (the operator restarted with AZURE_JIT_DRIFT_INTERVAL=10s, emulator counts reset):
  the resume sync of every policy and two drift checks: a no-op resync must write nothing to
  Azure (asserted); the Active requests' periodic verification is counted too.

The naive sequence a script issues is Get policy + Initiate per port per request (and no
verification, no close): the ratio column is operator calls / naive calls.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from benchmarks.common import REQUESTS, Progress, make_policies_ready, wait_requests
from benchmarks.env import Environment
from benchmarks.kube import POLICIES, Watcher
from benchmarks.report import table
from benchmarks.world import PORTS, policies_by_resource_group, request

NAME = "api_economy"
WRITE_METHODS = ("PUT", "POST", "DELETE", "PATCH")
READS = {
    "JitNetworkAccessPolicies_Get",
    "JitNetworkAccessPolicies_List",
    "SecurityRules_List",
    "SecurityRules_Get",
    "NetworkSecurityGroups_Get",
    "NetworkInterfaces_Get",
    "Subnets_Get",
    "VirtualMachines_Get",
    "VirtualMachines_List",
    "LongRunningOperation_Poll",
}
DRIFT_SECONDS = 10


def run(env: Environment, *, progress: Progress) -> dict[str, Any]:
    namespace = env.namespace("economy")
    env.reset_emulator()
    vm_list = list(range(20))
    policies, owner = policies_by_resource_group(env.layout, vm_list, prefix="eco")
    groups: dict[str, list[str]] = {}

    def make(
        group: str, vms: Sequence[int], ports: Sequence[int], duration: str
    ) -> list[dict[str, Any]]:
        bodies = []
        for vm in vms:
            index = len(bodies) + 1000 * len(groups)
            body = request(
                f"{group}-{vm:03d}",
                policy_name=owner[vm],
                vm_name=env.layout.vm_name(vm),
                port=ports[0],
                index=index,
                duration=duration,
            )
            prefix = body["spec"]["ports"][0]["sourceAddressPrefix"]
            body["spec"]["ports"] = [{"number": p, "sourceAddressPrefix": prefix} for p in ports]
            bodies.append(body)
        groups[group] = [b["metadata"]["name"] for b in bodies]
        return bodies

    operator = env.start_operator(namespace)
    try:
        make_policies_ready(env, namespace, policies, timeout=120)
        policy_calls = _per_object(operator.arm_calls(), "policy/")
        with Watcher(env.kube, namespace, REQUESTS) as watcher:
            progress("api economy: cold and warm lifecycles, Azure revoking on time")
            cold = make("cold", vm_list[:10], [PORTS[0]], "1m")
            env.kube.create_many(namespace, REQUESTS, cold)
            wait_requests(watcher, groups["cold"], "Active", timeout=120, progress=progress)
            warm = make("warm", vm_list[:10], [PORTS[1]], "1m")
            multi = make("multi", [10], list(PORTS[2:5]), "1m")
            long = make("long", vm_list[:10], [PORTS[9]], "1h")
            env.kube.create_many(namespace, REQUESTS, warm + multi + long)
            wait_requests(
                watcher, groups["warm"] + groups["multi"], "Expired", timeout=300, progress=progress
            )
            wait_requests(watcher, groups["cold"], "Expired", timeout=300, progress=progress)
            wait_requests(watcher, groups["long"], "Active", timeout=60, progress=progress)
            progress("api economy: lifecycles with Azure never revoking (operator closes)")
            env.admin.update_settings(never_revoke=True)
            forced = make("forced", vm_list[10:20], [PORTS[5]], "1m")
            env.kube.create_many(namespace, REQUESTS, forced)
            wait_requests(watcher, groups["forced"], "Expired", timeout=300, progress=progress)
        request_calls = _per_object(operator.arm_calls(), "request/")
    finally:
        operator.stop()

    progress(f"api economy: restart with drift interval {DRIFT_SECONDS}s; no-op resync")
    env.admin.update_settings(never_revoke=False)
    env.admin.reset_calls()
    with Watcher(env.kube, namespace, POLICIES) as policy_watcher:
        events_before = policy_watcher.events
        operator = env.start_operator(
            namespace, env={"AZURE_JIT_DRIFT_INTERVAL": f"{DRIFT_SECONDS}s"}
        )
        try:
            window_start = time.monotonic()
            time.sleep(2.5 * DRIFT_SECONDS)
            window = time.monotonic() - window_start
            resync_calls = operator.arm_calls()
        finally:
            operator.stop()
        policy_status_writes = policy_watcher.events - events_before
    emulator_calls = env.admin.calls()
    writes = {
        op: {m: n for m, n in entry["by_method"].items() if m in WRITE_METHODS}
        for op, entry in emulator_calls.items()
        if any(m in WRITE_METHODS for m in entry["by_method"]) and not op.startswith("Entra")
    }
    resync_policy = _per_object(resync_calls, "policy/")
    resync_request = _per_object(resync_calls, "request/")
    reconciles = sum(len(_reconciles(calls)) for calls in _group(resync_calls, "policy/").values())

    def per_request(group: str) -> dict[str, float]:
        names = groups[group]
        totals: Counter[str] = Counter()
        for name in names:
            totals.update(request_calls.get(name, {}))
        return {op: n / len(names) for op, n in sorted(totals.items())}

    lifecycles = {g: per_request(g) for g in ("cold", "warm", "multi", "forced")}
    first_sync = _average(policy_calls.values())
    resync_per_policy = (
        {op: n / reconciles for op, n in _sum(resync_policy.values()).items()} if reconciles else {}
    )
    long_verify = _average(resync_request.values())
    naive = {"cold": 1, "warm": 1, "multi": 3, "forced": 1}
    rows = []
    labels = {
        "cold": "request lifecycle, 1 port, VM not cached (Azure revokes)",
        "warm": "request lifecycle, 1 port, VM cached (Azure revokes)",
        "multi": "request lifecycle, 3 ports (Azure revokes)",
        "forced": "request lifecycle, 1 port, operator deletes the rule",
    }
    for group, label in labels.items():
        calls = lifecycles[group]
        reads = sum(n for op, n in calls.items() if op in READS)
        writes_ = sum(n for op, n in calls.items() if op not in READS)
        ports = naive[group]
        rows.append(
            [label, reads, writes_, reads + writes_, 2 * ports, (reads + writes_) / (2 * ports)]
        )
    for label, calls in (
        ("policy first sync (create)", first_sync),
        ("policy no-op resync (resume + drift checks), per reconcile", resync_per_policy),
        (f"Active request, {window:.0f}s after restart (verify)", long_verify),
    ):
        reads = sum(n for op, n in calls.items() if op in READS)
        writes_ = sum(n for op, n in calls.items() if op not in READS)
        rows.append([label, reads, writes_, reads + writes_, "-", "-"])
    result = {
        "arm_latency_seconds": env.arm_latency,
        "lifecycle_calls_per_request": lifecycles,
        "policy_first_sync_calls": first_sync,
        "policy_resync_calls_per_reconcile": resync_per_policy,
        "policy_reconciles_in_window": reconciles,
        "policies": len(policies),
        "resync_window_seconds": window,
        "drift_interval_seconds": DRIFT_SECONDS,
        "active_request_calls_after_restart": long_verify,
        "azure_writes_during_resync": writes,
        "policy_status_writes_during_resync": policy_status_writes,
        "emulator_calls_during_resync": emulator_calls,
        "table": table(
            ["what", "ARM reads", "ARM writes", "total", "naive (Get+Initiate per port)", "ratio"],
            rows,
        ),
    }
    result["table"] += (
        f"\n\nNo-op resync: {reconciles} policy reconciles in {window:.0f}s, Azure writes: "
        f"{sum(sum(m.values()) for m in writes.values())} ({writes or 'none'}); "
        f"JitPolicy status writes (Kubernetes): {policy_status_writes}"
    )
    if writes:
        raise AssertionError(f"a no-op resync wrote to Azure: {writes}")
    return result


def _group(
    calls: dict[str, list[tuple[float, float, str]]], prefix: str
) -> dict[str, list[tuple[float, float, str]]]:
    return {k.removeprefix(prefix): v for k, v in calls.items() if k.startswith(prefix)}


def _per_object(
    calls: dict[str, list[tuple[float, float, str]]], prefix: str
) -> dict[str, dict[str, int]]:
    return {
        name: dict(Counter(op for _, _, op in entries))
        for name, entries in _group(calls, prefix).items()
    }


def _reconciles(calls: list[tuple[float, float, str]]) -> list[float]:
    """One policy reconcile reads the Azure policy once: count its GETs."""
    return [a for a, _, op in calls if op == "JitNetworkAccessPolicies_Get"]


def _sum(counts: Any) -> Counter[str]:
    total: Counter[str] = Counter()
    for entry in counts:
        total.update(entry)
    return total


def _average(counts: Any) -> dict[str, float]:
    entries = list(counts)
    if not entries:
        return {}
    total = _sum(entries)
    return {op: n / len(entries) for op, n in sorted(total.items())}
