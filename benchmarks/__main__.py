"""``python -m benchmarks``: run the benchmarks against a fresh local control plane and the
emulator, print a table per benchmark and write ``benchmarks/results/<name>.json``.

    python -m benchmarks                       # everything at the issue's sizes (~25 min)
    python -m benchmarks --quick               # small sizes, a few minutes
    python -m benchmarks --only open_latency --only peer
    python -m benchmarks --only scale --scale-policies 200 --scale-requests 2000
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks import api_economy, close_lag, open_latency, peer, scale
from benchmarks.env import Environment, environment
from benchmarks.report import write_result
from benchmarks.world import Layout

BENCHMARKS = ("open_latency", "close_lag", "api_economy", "peer", "scale")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--only", action="append", choices=BENCHMARKS, help="run only this one (repeatable)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a fast check")
    parser.add_argument(
        "--arm-latency-ms", type=float, default=50.0, help="fixed emulated ARM latency"
    )
    parser.add_argument("--open-sizes", default="1,100,1000", help="requests created at once")
    parser.add_argument("--open-vms", type=int, default=100, help="VMs the requests spread over")
    parser.add_argument("--open-singles", type=int, default=20, help="one-at-a-time samples")
    parser.add_argument("--close-requests", type=int, default=1000)
    parser.add_argument(
        "--close-graces",
        default="10,30",
        help="close grace seconds to run (comma-separated; the operator accepts >= 10)",
    )
    parser.add_argument(
        "--close-proposed-zero",
        action="store_true",
        default=False,
        help="also run close grace 0s, validation bypassed (the proposed change)",
    )
    parser.add_argument(
        "--no-close-proposed-zero", dest="close_proposed_zero", action="store_false"
    )
    parser.add_argument(
        "--close-azure-revokes",
        action="store_true",
        default=True,
        help="also run grace 30s with Azure revoking on time (the usual case)",
    )
    parser.add_argument(
        "--no-close-azure-revokes", dest="close_azure_revokes", action="store_false"
    )
    parser.add_argument("--peer-requests", type=int, default=20)
    parser.add_argument("--scale-policies", type=int, default=1000)
    parser.add_argument("--scale-requests", type=int, default=10000)
    parser.add_argument("--scale-expiring", type=int, default=500)
    parser.add_argument(
        "--vms", type=int, default=None, help="VMs in the emulator world (default: what fits)"
    )
    parser.add_argument("--resource-groups", type=int, default=10)
    parser.add_argument(
        "--profile", action="store_true", help="sample the operator with py-spy (bench group)"
    )
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="FRAMES",
        help="trace the operator's allocations (slow); scale writes results/scale-memory.txt",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    if args.quick:
        args.open_sizes = "1,20,100"
        args.open_vms = 20
        args.open_singles = 5
        args.close_requests = 100
        args.peer_requests = 5
        args.scale_policies = 50
        args.scale_requests = 500
        args.scale_expiring = 50
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    selected = args.only or list(BENCHMARKS)
    command = shlex.join(["python", "-m", "benchmarks", *argv])
    vms = args.vms or max(args.open_vms, args.scale_policies if "scale" in selected else 0, 100)
    layout = Layout(vms=vms, resource_groups=args.resource_groups)
    latency = args.arm_latency_ms / 1000

    def progress(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)

    runs: dict[str, Callable[[Environment], dict[str, Any]]] = {
        "open_latency": lambda env: open_latency.run(
            env,
            sizes=tuple(int(s) for s in args.open_sizes.split(",")),
            vms=args.open_vms,
            singles=args.open_singles,
            progress=progress,
        ),
        "close_lag": lambda env: close_lag.run(
            env,
            requests=args.close_requests,
            vms=args.open_vms,
            graces=tuple(float(g) for g in args.close_graces.split(",")),
            proposed_zero=args.close_proposed_zero,
            azure_revokes=args.close_azure_revokes,
            progress=progress,
        ),
        "api_economy": lambda env: api_economy.run(env, progress=progress),
        "peer": lambda env: peer.run(env, requests=args.peer_requests, progress=progress),
        "scale": lambda env: scale.run(
            env,
            policies=args.scale_policies,
            requests=args.scale_requests,
            expiring=args.scale_expiring,
            progress=progress,
        ),
    }
    started = time.monotonic()
    tables: list[tuple[str, str]] = []
    with environment(
        layout=layout,
        arm_latency=latency,
        keep=args.keep,
        profile=args.profile,
        tracemalloc=args.tracemalloc,
        progress=progress,
    ) as env:
        for name in BENCHMARKS:
            if name not in selected:
                continue
            progress(f"== {name}")
            began = time.monotonic()
            load_before = os.getloadavg()
            result = runs[name](env)
            result["seconds"] = time.monotonic() - began
            # Other processes on the machine skew latencies; the load average shows it.
            result["loadavg_before"] = load_before
            result["loadavg_after"] = os.getloadavg()
            path = write_result(name, result, command=command)
            tables.append((name, result["table"]))
            print(f"\n{name} ({result['seconds']:.0f}s) -> {path}\n{result['table']}\n", flush=True)
    print(f"== all done in {time.monotonic() - started:.0f}s; command: {command}")
    for name, text in tables:
        print(f"\n### {name}\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
