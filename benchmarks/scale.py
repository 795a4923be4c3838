"""Scale: many JitPolicies and JitAccessRequests in one namespace, the operator as its own
process (RSS and CPU from /proc), Azure never revoking (every close is the operator's).

1. ``policies`` JitPolicies, one VM each with ten ports: created at once, all Ready.
2. ``requests - expiring`` requests of 12h created at once (ten per VM), all Active.
3. ``expiring`` requests of 1m created at once on the remaining ports, all Active.
4. Steady state: RSS, and CPU over a quiet window.
5. The operator is killed (SIGKILL: a crash or a node loss, the hardest restart) shortly
   before the first 1m request expires, stays down for ``down`` seconds, and a new process
   starts. Resync time is taken from its start to: /readyz; every policy re-checked (its
   last-sync gauge newer than the start); every Active port re-verified on the NSGs
   (open_ports gauge); every expiring request Expired.
6. Proof that no expiry was missed: every expiring request is Expired with its allow rule
   gone from the emulator; every 12h request still Active with its rule present; no
   Initiate during the resync (nothing initiated twice); ports_open_past_expiry back to 0.
"""

from __future__ import annotations

import time
from typing import Any

from azure_jit_operator.domain.timestamps import parse_timestamp
from benchmarks.common import (
    REQUESTS,
    Progress,
    make_policies_ready,
    open_ports_in_emulator,
    wait_requests,
)
from benchmarks.env import Environment, OperatorProcess, wait_operator_ready
from benchmarks.kube import Watcher, wait_until
from benchmarks.report import RESULTS_DIR, summary, table
from benchmarks.world import PORTS, policy, spread_requests

NAME = "scale"
STEADY_WINDOW = 30.0
DOWN_SECONDS = 15.0
MIB = 2**20


def run(
    env: Environment, *, policies: int, requests: int, expiring: int, progress: Progress
) -> dict[str, Any]:
    if requests > policies * len(PORTS):
        raise ValueError(f"{requests} requests do not fit {policies} VMs x {len(PORTS)} ports")
    namespace = env.namespace("scale")
    env.reset_emulator(never_revoke=True)
    layout = env.layout
    result: dict[str, Any] = {"policies": policies, "requests": requests, "expiring": expiring}
    operator = env.start_operator(namespace, probe=False)
    try:
        bodies = [
            policy(
                f"pol-{i:05d}",
                layout,
                layout.resource_group(i),
                [i],
                azure_name=f"pol-{i:05d}",
            )
            for i in range(policies)
        ]
        owner = {i: f"pol-{i:05d}" for i in range(policies)}
        progress(f"scale: {policies} JitPolicies")
        result["policies_ready_seconds"] = make_policies_ready(env, namespace, bodies, timeout=1800)
        result["after_policies"] = _stats(operator)
        progress(
            f"  Ready in {result['policies_ready_seconds']:.0f}s; "
            f"RSS {result['after_policies']['rss_mib']:.0f} MiB"
        )
        everything = spread_requests(
            requests,
            vms=list(range(policies)),
            owner=owner,
            layout=layout,
            duration="12h",
            prefix="s",
        )
        long_bodies, short_bodies = (
            everything[: requests - expiring],
            everything[requests - expiring :],
        )
        for body in short_bodies:
            body["spec"]["duration"] = "1m"
        long_names = [b["metadata"]["name"] for b in long_bodies]
        short_names = [b["metadata"]["name"] for b in short_bodies]
        with Watcher(env.kube, namespace, REQUESTS) as watcher:
            progress(f"scale: {len(long_bodies)} requests of 12h at once")
            cpu0 = operator.stats().cpu_seconds
            started = time.monotonic()
            with operator.sampled(f"{NAME}-requests"):
                created = env.kube.create_many(namespace, REQUESTS, long_bodies)
                progress(f"  created in {created:.0f}s")
                wait_requests(watcher, long_names, "Active", timeout=3600, progress=progress)
            result["long_active_seconds"] = time.monotonic() - started
            result["long_active_cpu_seconds"] = operator.stats().cpu_seconds - cpu0
            progress(
                f"  all Active in {result['long_active_seconds']:.0f}s "
                f"(operator CPU {result['long_active_cpu_seconds']:.0f}s)"
            )
            progress(f"scale: {len(short_bodies)} requests of 1m at once")
            env.kube.create_many(namespace, REQUESTS, short_bodies)
            wait_requests(watcher, short_names, "Active", timeout=600, progress=progress)
            expiries = {
                n: parse_timestamp(watcher.snapshot()[n].status["expiresAt"]).timestamp()
                for n in short_names
            }
            first_expiry = min(expiries.values())
            result["after_requests"] = _stats(operator)
            if env.tracemalloc:
                report = operator.memory_report()
                (RESULTS_DIR / f"{NAME}-memory.txt").write_text(report, encoding="utf-8")
            window = max(5.0, min(STEADY_WINDOW, first_expiry - time.time() - 8))
            cpu1 = operator.stats().cpu_seconds
            time.sleep(window)
            result["steady"] = {
                "window_seconds": window,
                "cpu_percent": 100 * (operator.stats().cpu_seconds - cpu1) / window,
                **_stats(operator),
            }
            progress(
                f"  steady: RSS {result['steady']['rss_mib']:.0f} MiB, CPU "
                f"{result['steady']['cpu_percent']:.1f}% over {window:.0f}s"
            )
            kill_at = first_expiry - 5
            if time.time() < kill_at:
                time.sleep(kill_at - time.time())
            operator.stop(kill=True)
            killed = time.time()
            progress(f"scale: operator killed; down for {DOWN_SECONDS:.0f}s")
            time.sleep(DOWN_SECONDS)
            env.admin.reset_calls()
            restarted = time.time()
            operator = env.start_operator(
                namespace, probe=False, name="restarted", wait_ready=False
            )
            with operator.sampled(f"{NAME}-resync"):
                ready = wait_operator_ready(operator, timeout=600)
                resync = _wait_resync(
                    operator,
                    watcher,
                    policies=policies,
                    long_ports=len(long_names),
                    short_names=short_names,
                    since=restarted,
                    progress=progress,
                )
            resync["ready_seconds"] = ready
            result["resync"] = resync
            result["after_resync"] = _stats(operator)
            snapshot = watcher.snapshot()
        calls = env.admin.calls()
        initiates = calls.get("JitNetworkAccessPolicies_Initiate", {}).get("total", 0)
        lags = [snapshot[n].phases["Expired"] - expiries[n] for n in short_names]
        closed_at = [
            parse_timestamp(snapshot[n].status["closedAt"]).timestamp() - expiries[n]
            for n in short_names
        ]
        expired_during_downtime = sum(1 for e in expiries.values() if killed <= e < restarted)
        expired_during_resync = sum(
            1 for e in expiries.values() if restarted <= e <= restarted + resync["all_seconds"]
        )
        open_now = open_ports_in_emulator(env, list(range(policies)))
        expected_open = {vm: set() for vm in range(policies)}
        for body in long_bodies:
            vm = int(body["spec"]["virtualMachine"].rsplit("-", 1)[1])
            expected_open[vm].add(body["spec"]["ports"][0]["number"])
        wrong = {
            vm: (open_now[vm], want) for vm, want in expected_open.items() if open_now[vm] != want
        }
        still_active = sum(1 for n in long_names if snapshot[n].status.get("phase") == "Active")
        result["proof"] = {
            "expiring_requests": len(short_names),
            "expired_while_down": expired_during_downtime,
            "expired_during_resync": expired_during_resync,
            "all_expiring_expired": all(
                snapshot[n].status.get("phase") == "Expired" for n in short_names
            ),
            "close_lag_s": summary(lags),
            "close_lag_closed_at_s": summary(closed_at),
            "long_requests_still_active": still_active,
            "vms_with_unexpected_rules": len(wrong),
            "initiates_during_resync": initiates,
            "ports_open_past_expiry_gauge": operator.metric("azure_jit_ports_open_past_expiry"),
            "arm_calls_during_resync": {k: v["total"] for k, v in calls.items()},
        }
        if wrong:
            example = next(iter(wrong.items()))
            result["proof"]["example_unexpected"] = str(example)
        progress(
            f"  proof: {len(short_names)} expiring ({expired_during_downtime} while down, "
            f"{expired_during_resync} during resync) all Expired="
            f"{result['proof']['all_expiring_expired']}, max lag {max(lags):.1f}s; "
            f"{still_active}/{len(long_names)} long still Active; {len(wrong)} VMs wrong; "
            f"{initiates} initiates"
        )
    finally:
        operator.stop(kill=True)
    result["table"] = _table(result)
    return result


def _wait_resync(
    operator: OperatorProcess,
    watcher: Watcher,
    *,
    policies: int,
    long_ports: int,
    short_names: list[str],
    since: float,
    progress: Progress,
) -> dict[str, Any]:
    marks: dict[str, float] = {}

    def check() -> bool:
        samples = operator.metrics()
        synced = sum(
            1
            for _, value in samples.get("azure_jit_policy_last_sync_timestamp_seconds", [])
            if value >= since - 1
        )
        open_ports = sum(v for _, v in samples.get("azure_jit_open_ports", []))
        expired = watcher.count(lambda s: s.status.get("phase") == "Expired")
        now = time.time() - since
        if synced >= policies:
            marks.setdefault("policies_seconds", now)
        if open_ports >= long_ports:
            marks.setdefault("open_ports_seconds", now)
        if expired >= len(short_names):
            marks.setdefault("expiring_closed_seconds", now)
        return len(marks) == 3

    wait_until(check, timeout=1800, what="resync", interval=2.0)
    marks["all_seconds"] = max(marks.values())
    progress(
        "  resync: " + ", ".join(f"{k.removesuffix('_seconds')} {v:.0f}s" for k, v in marks.items())
    )
    return marks


def _stats(operator: OperatorProcess) -> dict[str, float]:
    stats = operator.stats()
    return {
        "rss_mib": stats.rss_bytes / MIB,
        "peak_rss_mib": stats.peak_rss_bytes / MIB,
        "cpu_seconds": stats.cpu_seconds,
    }


def _table(result: dict[str, Any]) -> str:
    proof = result.get("proof", {})
    resync = result.get("resync", {})
    missed_none = proof.get("all_expiring_expired") and not proof.get("vms_with_unexpected_rules")
    rows = [
        ["JitPolicies Ready (created at once)", f"{result['policies_ready_seconds']:.0f} s"],
        ["RSS with the policies", f"{result['after_policies']['rss_mib']:.0f} MiB"],
        [
            f"{result['requests'] - result['expiring']} requests Active (created at once)",
            f"{result['long_active_seconds']:.0f} s, {result['long_active_cpu_seconds']:.0f} CPU s",
        ],
        [
            f"RSS with {result['requests']} Active requests (peak)",
            f"{result['steady']['rss_mib']:.0f} MiB ({result['steady']['peak_rss_mib']:.0f})",
        ],
        ["CPU at steady state", f"{result['steady']['cpu_percent']:.1f} % of a core"],
        ["restart: /readyz", f"{resync.get('ready_seconds', float('nan')):.1f} s"],
        ["restart: every policy re-checked", f"{resync.get('policies_seconds', 0):.0f} s"],
        ["restart: every open port re-verified", f"{resync.get('open_ports_seconds', 0):.0f} s"],
        [
            f"restart: {proof.get('expiring_requests')} expired requests closed",
            f"{resync.get('expiring_closed_seconds', 0):.0f} s",
        ],
        [
            "RSS after resync (peak)",
            f"{result['after_resync']['rss_mib']:.0f} MiB "
            f"({result['after_resync']['peak_rss_mib']:.0f})",
        ],
        [
            "expiries missed",
            ("none" if missed_none else "SOME")
            + f" ({proof.get('expired_while_down')} expired while down, "
            f"{proof.get('expired_during_resync')} during resync; close lag max "
            f"{proof.get('close_lag_s', {}).get('max', float('nan')):.0f} s)",
        ],
        ["Initiates during resync", str(proof.get("initiates_during_resync"))],
    ]
    return table(["scale", "result"], rows)
