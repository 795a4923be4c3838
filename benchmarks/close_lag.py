"""Close lag: ``expiresAt`` -> allow rule gone, when Azure never revokes (the emulator's
``never_revoke``), so the operator does every close itself.

Real time, operator as a separate process (no shifted clock: a clock jump would wake every
sleeping worker at once and put a burst of NSG reads right before the expiries, which a real
operator never sees). N requests of ``duration`` are created at once over the VMs; they
become Active within the open phase, so their expiries spread over about as long as that
took (reported). Per close grace: a fresh namespace, operator and emulator reset.

Per request:

- ``rule gone``: the end of the last ARM call of the forced delete (the long-running
  operation's final poll, when the emulator removes the rule), from the operator's probe;
- ``Expired seen``: when the benchmark's watch saw phase Expired (the operator confirmed the
  rule gone on the NSG and wrote status) — what a user or an alert sees.

Both are measured from ``status.expiresAt`` (whole seconds, exact); the promise is that
both stay within the grace. Grace 0s is not accepted by config.py (>= 10s); the optional
``0s (proposed)`` row runs the same operator with the validation bypassed
(``BENCH_CLOSE_GRACE_SECONDS``).
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
    request_calls,
    wait_requests,
)
from benchmarks.env import Environment
from benchmarks.kube import Watcher
from benchmarks.report import summary, table
from benchmarks.world import policies_by_resource_group, spread_requests

NAME = "close_lag"
DURATION = "2m"


def run(
    env: Environment,
    *,
    requests: int,
    vms: int,
    graces: tuple[float, ...],
    proposed_zero: bool,
    azure_revokes: bool = False,
    progress: Progress,
) -> dict[str, Any]:
    configs: list[tuple[str, dict[str, str], bool]] = []
    if proposed_zero:
        zero = {"AZURE_JIT_CLOSE_GRACE": "10s", "BENCH_CLOSE_GRACE_SECONDS": "0"}
        configs.append(("0s (proposed)", zero, True))
    configs += [(f"{g:g}s", {"AZURE_JIT_CLOSE_GRACE": f"{g:g}s"}, True) for g in graces]
    if azure_revokes:
        # The usual case for comparison: Azure removes the rule at endTimeUtc itself.
        configs.append(("30s, Azure revokes on time", {"AZURE_JIT_CLOSE_GRACE": "30s"}, False))
    results: dict[str, Any] = {
        "requests": requests,
        "vms": vms,
        "duration": DURATION,
        "arm_latency_seconds": env.arm_latency,
        "runs": [],
    }
    for label, extra, never_revoke in configs:
        progress(f"close lag: close grace {label}, {requests} requests of {DURATION}")
        results["runs"].append(
            _run(
                env,
                label=label,
                extra=extra,
                never_revoke=never_revoke,
                requests=requests,
                vms=vms,
                progress=progress,
            )
        )
    rows = [
        [
            r["close_grace"],
            r["requests"],
            r["expiry_spread_seconds"],
            r["rule_gone_s"]["p50"],
            r["rule_gone_s"]["p99"],
            r["rule_gone_s"]["max"],
            r["expired_seen_s"]["p50"],
            r["expired_seen_s"]["p99"],
            r["expired_seen_s"]["max"],
            r["allow_rules_left"],
        ]
        for r in results["runs"]
    ]
    results["table"] = table(
        [
            "close grace",
            "requests",
            "expiries spread s",
            "rule gone p50 s",
            "p99",
            "max",
            "Expired seen p50 s",
            "p99",
            "max",
            "rules left",
        ],
        rows,
    )
    return results


def _run(
    env: Environment,
    *,
    label: str,
    extra: dict[str, str],
    never_revoke: bool,
    requests: int,
    vms: int,
    progress: Progress,
) -> dict[str, Any]:
    namespace = env.namespace("close")
    env.reset_emulator(never_revoke=never_revoke)
    operator = env.start_operator(namespace, env=extra)
    try:
        vm_list = list(range(vms))
        policies, owner = policies_by_resource_group(env.layout, vm_list, prefix="close")
        make_policies_ready(env, namespace, policies, timeout=300)
        bodies = spread_requests(
            requests, vms=vm_list, owner=owner, layout=env.layout, duration=DURATION, prefix="c"
        )
        names = [b["metadata"]["name"] for b in bodies]
        by_name = dict(zip(names, bodies, strict=True))
        with Watcher(env.kube, namespace, REQUESTS) as watcher:
            env.kube.create_many(namespace, REQUESTS, bodies)
            opened = wait_requests(watcher, names, "Active", timeout=600, progress=progress)
            progress(f"  {requests} Active in {opened:.0f}s; waiting for the expiries")
            expiries = {
                n: parse_timestamp(s.status["expiresAt"]).timestamp()
                for n, s in watcher.snapshot().items()
                if n in set(names)
            }
            spread = max(expiries.values()) - min(expiries.values())
            if time.time() < min(expiries.values()):
                progress(
                    f"  expiries spread over {spread:.0f}s, first in "
                    f"{min(expiries.values()) - time.time():.0f}s"
                )
            with operator.sampled(f"{NAME}-{label.split(maxsplit=1)[0]}"):
                wait_requests(watcher, names, "Expired", timeout=900, progress=progress)
            seen = watcher.snapshot()
        calls = operator.arm_calls()
        expired_lag, gone_lag = [], []
        forced = 0
        for name in names:
            expires = expiries[name]
            expired_lag.append(seen[name].phases["Expired"] - expires)
            closing = [
                (a, b, op) for a, b, op in request_calls(calls, by_name[name]) if b >= expires - 1
            ]
            deletes = [a for a, _, op in closing if op == "SecurityRules_Delete"]
            if deletes:
                forced += 1
                polls = [
                    b
                    for a, b, op in closing
                    if op == "LongRunningOperation_Poll" and a >= deletes[0]
                ]
                gone_lag.append((max(polls) if polls else max(b for _, b, _ in closing)) - expires)
        leftover = {vm: sorted(p) for vm, p in open_ports_in_emulator(env, vm_list).items() if p}
        left = sum(len(p) for p in leftover.values())
        unforced = [
            n
            for n in names
            if not any(
                op == "SecurityRules_Delete" and b >= expiries[n] - 1
                for _, b, op in request_calls(calls, by_name[n])
            )
        ]
        gone = summary(gone_lag)
        progress(
            f"  rule gone p50 {gone['p50']:.2f}s p99 {gone['p99']:.2f}s max {gone['max']:.2f}s; "
            f"{forced} forced deletes; {left} allow rules left"
        )
        return {
            "close_grace": label,
            "requests": requests,
            "open_seconds": opened,
            "expiry_spread_seconds": spread,
            "forced_deletes": forced,
            "rule_gone_s": gone,
            "expired_seen_s": summary(expired_lag),
            "allow_rules_left": left,
            # Rules still on an NSG after every request was Expired: VM index -> ports. VMs
            # whose index is a multiple of 5 sit behind their resource group's shared subnet
            # NSG (hundreds of rules, several list pages).
            "allow_rules_left_by_vm": leftover,
            "expired_without_a_delete": unforced,
            "ports_open_past_expiry_gauge": operator.metric("azure_jit_ports_open_past_expiry"),
        }
    finally:
        operator.stop()
