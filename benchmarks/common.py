"""Steps the benchmarks share: policies made Ready, requests created and waited for, and the
ARM time of one request taken from the operator's probe."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.env import Environment
from benchmarks.kube import POLICIES, REQUESTS, Seen, Watcher, wait_until

TERMINAL_FAILURES = ("Denied", "Failed")
Progress = Callable[[str], None]


def make_policies_ready(
    env: Environment, namespace: str, bodies: Sequence[dict[str, Any]], *, timeout: float
) -> float:
    """Create the JitPolicies and wait until every one is Ready; the seconds it took."""
    started = time.monotonic()
    with Watcher(env.kube, namespace, POLICIES) as watcher:
        env.kube.create_many(namespace, POLICIES, bodies)
        wait_until(
            lambda: watcher.reached("Ready") >= len(bodies),
            timeout=timeout,
            what=f"{len(bodies)} JitPolicies Ready",
        )
    return time.monotonic() - started


def wait_requests(
    watcher: Watcher, names: Sequence[str], phase: str, *, timeout: float, progress: Progress
) -> float:
    """Wait until every named request reached ``phase``; fail fast on Denied/Failed."""
    wanted = set(names)
    started = time.monotonic()
    last_report = started

    def done() -> bool:
        nonlocal last_report
        seen = watcher.snapshot()
        failed = [
            n for n in wanted if n in seen and any(p in seen[n].phases for p in TERMINAL_FAILURES)
        ]
        if failed:
            raise RuntimeError(
                f"{len(failed)} request(s) ended Denied/Failed, e.g. {failed[0]}: "
                f"{seen[failed[0]].status.get('message')}"
            )
        reached = sum(1 for n in wanted if n in seen and phase in seen[n].phases)
        if time.monotonic() - last_report > 15:
            last_report = time.monotonic()
            progress(f"  {reached}/{len(wanted)} {phase} after {last_report - started:.0f}s")
        return reached == len(wanted)

    return wait_until(done, timeout=timeout, what=f"{len(wanted)} requests {phase}", interval=0.5)


@dataclass
class ArmTime:
    """The ARM calls of one request inside a time window."""

    calls: int
    sequential: int  # groups of overlapping calls: the steps the request waited through
    wall: float  # seconds during which at least one call was in flight
    by_operation: dict[str, int]


def arm_time(calls: Sequence[tuple[float, float, str]], start: float, end: float) -> ArmTime:
    inside = sorted((a, b, op) for a, b, op in calls if b > start and a < end)
    wall, groups = 0.0, 0
    current_start, current_end = None, None
    by_operation: dict[str, int] = {}
    for call_start, call_end, op in inside:
        by_operation[op] = by_operation.get(op, 0) + 1
        a, b = max(call_start, start), min(call_end, end)
        if current_end is None or a > current_end:
            if current_end is not None and current_start is not None:
                wall += current_end - current_start
            current_start, current_end = a, b
            groups += 1
        else:
            current_end = max(current_end, b)
    if current_end is not None and current_start is not None:
        wall += current_end - current_start
    return ArmTime(calls=len(inside), sequential=groups, wall=wall, by_operation=by_operation)


def open_ports_in_emulator(env: Environment, vms: Sequence[int]) -> dict[int, set[int]]:
    """VM -> ports with a JIT allow rule on any NSG guarding it (the emulator's view)."""
    result: dict[int, set[int]] = {}
    for vm in vms:
        access = env.admin.vm_access(
            "00000000-0000-0000-0000-000000000001",
            env.layout.resource_group(vm),
            env.layout.vm_name(vm),
        )
        result[vm] = {int(entry["port"]) for entry in access["openPorts"]}
    return result


def phase_time(seen: Seen, phase: str) -> float | None:
    return seen.phases.get(phase)


__all__ = [
    "POLICIES",
    "REQUESTS",
    "ArmTime",
    "Progress",
    "arm_time",
    "make_policies_ready",
    "open_ports_in_emulator",
    "wait_requests",
]


def request_calls(
    calls: dict[str, list[tuple[float, float, str]]], body: dict[str, Any]
) -> list[tuple[float, float, str]]:
    """The ARM calls made for a request: its own reconciles' and its VM's (which act for every
    request on the VM; callers take the ones inside the request's own time window)."""
    name = body["metadata"]["name"]
    vm = body["spec"]["virtualMachine"]
    return [*calls.get(f"request/{name}", []), *calls.get(f"vm/{vm}", [])]
