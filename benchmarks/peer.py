"""Peer: what a cron/PowerShell-style alternative costs per request, measured in the same run
as the operator, against the same emulator with the same ARM latency.

The alternative is a fresh ``python -c`` process per request that builds a credential
(client secret against the emulator's Entra endpoint) and a SecurityCenter client, GETs the
JIT policy and initiates one port — what a script or CI job does. It neither confirms the
rule on the NSG nor closes anything (it relies on Azure's endTimeUtc). Its wall time, CPU
(user+system of the child) and peak RSS are taken per process.

The operator: the same number of requests created one at a time (each alone, so latency is
not queueing), its wall time created -> Active from the watch, and the operator process's
CPU spent over the whole run divided by the requests (kopf, Kubernetes and Azure calls,
confirmation on the NSG; the later close is not included).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from tests.support.identity import OPERATOR, TENANT_ID

from benchmarks.common import REQUESTS, Progress, make_policies_ready, wait_requests
from benchmarks.env import Environment
from benchmarks.kube import Watcher
from benchmarks.report import summary, table
from benchmarks.world import LOCATION, PORTS, SUBSCRIPTION, policies_by_resource_group, request

NAME = "peer"

SCRIPT = """
import datetime, sys
from azure.identity import ClientSecretCredential
from azure.mgmt.security import SecurityCenter
from azure.mgmt.security.v2020_01_01 import models
endpoint, ca, tenant, client, secret, sub, rg, loc, policy, vm, port, source = sys.argv[1:]
credential = ClientSecretCredential(tenant, client, secret, authority=endpoint,
    connection_verify=ca, disable_instance_discovery=True)
client = SecurityCenter(credential, sub, base_url=endpoint, connection_verify=ca,
    api_version="2020-01-01")
found = client.jit_network_access_policies.get(rg, loc, policy)
vm_id = next(v.id for v in found.virtual_machines if v.id.lower().endswith("/" + vm))
end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
client.jit_network_access_policies.initiate(rg, loc, policy,
    models.JitNetworkAccessPolicyInitiateRequest(
        virtual_machines=[models.JitNetworkAccessPolicyInitiateVirtualMachine(id=vm_id,
            ports=[models.JitNetworkAccessPolicyInitiatePort(number=int(port),
                allowed_source_address_prefix=source, end_time_utc=end)])],
        justification="peer script"))
"""


def run(env: Environment, *, requests: int, progress: Progress) -> dict[str, Any]:
    namespace = env.namespace("peer")
    env.reset_emulator()
    vm_list = list(range(requests))
    policies, owner = policies_by_resource_group(env.layout, vm_list, prefix="peer")
    operator = env.start_operator(namespace)
    try:
        make_policies_ready(env, namespace, policies, timeout=120)
        progress(f"peer: {requests} script processes, one after another")
        env.admin.reset_calls()
        script_wall, script_cpu = [], []
        peak_rss = 0
        for i, vm in enumerate(vm_list):
            started = time.monotonic()
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    SCRIPT,
                    env.endpoint.base_url,
                    str(env.endpoint.ca_path),
                    TENANT_ID,
                    OPERATOR.client_id,
                    OPERATOR.secret,
                    SUBSCRIPTION,
                    env.layout.resource_group(vm),
                    LOCATION,
                    owner[vm],
                    env.layout.vm_name(vm),
                    str(PORTS[0]),
                    f"10.200.0.{i + 1}/32",
                ],
                env={k: v for k, v in os.environ.items() if not k.startswith("AZURE_")},
            )
            # wait4: this child's own CPU and peak RSS (RUSAGE_CHILDREN would mix in every
            # child waited for before, the operators of earlier benchmarks included).
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            script_wall.append(time.monotonic() - started)
            if child.returncode != 0:
                raise RuntimeError(f"the peer script failed with {child.returncode}")
            script_cpu.append(usage.ru_utime + usage.ru_stime)
            peak_rss = max(peak_rss, usage.ru_maxrss * 1024)
        script_calls = _summarise_calls(env.admin.calls())

        progress(f"peer: {requests} operator requests, one after another")
        env.admin.reset_calls()
        operator_wall = []
        cpu_before = operator.stats().cpu_seconds
        with Watcher(env.kube, namespace, REQUESTS) as watcher:
            for i, vm in enumerate(vm_list):
                body = request(
                    f"peer-{i:03d}",
                    policy_name=owner[vm],
                    vm_name=env.layout.vm_name(vm),
                    port=PORTS[1],
                    index=i,
                    duration="1h",
                )
                env.kube.create_many(namespace, REQUESTS, [body], threads=1)
                name = body["metadata"]["name"]
                wait_requests(watcher, [name], "Active", timeout=60, progress=progress)
                seen = watcher.snapshot()[name]
                operator_wall.append(seen.phases["Active"] - seen.added)
        operator_cpu = operator.stats().cpu_seconds - cpu_before
        operator_calls = _summarise_calls(env.admin.calls())
        operator_rss = operator.stats().rss_bytes
    finally:
        operator.stop()
    script = summary(script_wall)
    ours = summary(operator_wall)
    rows = [
        [
            "script process per request (Get + Initiate)",
            script["p50"],
            script["p95"],
            sum(script_cpu) / requests * 1000,
            peak_rss / 2**20,
            script_calls["arm"] / requests,
            script_calls["token"] / requests,
            "no",
        ],
        [
            "operator (created -> Active)",
            ours["p50"],
            ours["p95"],
            operator_cpu / requests * 1000,
            operator_rss / 2**20,
            operator_calls["arm"] / requests,
            operator_calls["token"] / requests,
            "yes (confirmed on the NSG; closed at expiry)",
        ],
    ]
    return {
        "requests": requests,
        "arm_latency_seconds": env.arm_latency,
        "script": {
            "wall_s": script,
            "cpu_s_per_request": sum(script_cpu) / requests,
            "peak_rss_bytes": peak_rss,
            "calls": script_calls,
        },
        "operator": {
            "wall_s": ours,
            "cpu_s_per_request": operator_cpu / requests,
            "rss_bytes": operator_rss,
            "calls": operator_calls,
        },
        "table": table(
            [
                "per request",
                "wall p50 s",
                "p95 s",
                "CPU ms",
                "RSS MiB",
                "ARM calls",
                "token requests",
                "verified/closed",
            ],
            rows,
        ),
    }


def _summarise_calls(calls: dict[str, Any]) -> dict[str, Any]:
    arm = sum(e["total"] for op, e in calls.items() if not op.startswith("Entra"))
    token = sum(e["total"] for op, e in calls.items() if op.startswith("Entra"))
    return {"arm": arm, "token": token, "by_operation": {k: v["total"] for k, v in calls.items()}}
