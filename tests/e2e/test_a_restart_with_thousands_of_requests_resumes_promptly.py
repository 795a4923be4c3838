"""A restart with thousands of JitAccessRequests in the API resumes work at once: the port
that expired while the operator was down is closed first, within seconds of the start (one
LIST fills the controller's cache and the overdue close is queued ahead of everything else),
and a new request is opened after it. The new request arrives through kopf's watch behind
the thousands of objects kopf handles once after a start, so its deadline is wider."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from kubernetes import client as k8s

from azure_jit_operator.clock import Clock
from azure_jit_operator.domain.timestamps import format_timestamp
from tests.support.manifests import API_VERSION, policy_manifest, port_rule, request_manifest
from tests.support.operator import (
    PLURALS,
    JitWorld,
    operator_running,
    operator_settings,
    ts,
)

GROUP, VERSION = API_VERSION.split("/")
FINISHED = 2_000
PROMPTLY = 20.0  # seconds from the operator's start to the overdue close
NEWCOMER_DEADLINE = 60.0  # the newcomer waits for kopf to handle every listed object once
HOLDER_SOURCE = "198.51.100.7/32"
NEWCOMER_SOURCE = "203.0.113.9/32"
POLICY = policy_manifest(
    vms={"vm-web-01": [port_rule(22, prefixes=["198.51.100.0/24", "203.0.113.0/24"])]}
)
FINALIZER = "azurejit.dev/finalizer"


def finished_request(world: JitWorld, index: int, closed: str) -> None:
    """A request an earlier operator saw through to its end (finalizer on, status Expired),
    kept until the terminal TTL."""
    body = request_manifest(f"done-{index:05d}", ports=[(22, HOLDER_SOURCE)], duration="1h")
    body["metadata"]["finalizers"] = [FINALIZER]
    custom = k8s.CustomObjectsApi(world.api)
    plural = PLURALS["JitAccessRequest"]
    custom.create_namespaced_custom_object(GROUP, VERSION, world.namespace, plural, body)
    status: dict[str, Any] = {
        "phase": "Expired",
        "message": "access ended",
        "closedAt": closed,
        "expiresAt": closed,
        "startTime": closed,
    }
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, world.namespace, plural, body["metadata"]["name"], {"status": status}
    )


def test_a_restart_with_thousands_of_requests_closes_and_opens_ports_within_seconds(
    world: JitWorld,
) -> None:
    world.admin.update_settings(never_revoke=True)  # only the operator closes the port
    clock = Clock()
    settings = operator_settings(world.control_plane, world.emulator, world.namespace)
    with operator_running(settings, clock=clock):
        world.apply(POLICY)
        world.wait_policy_ready("web-admins")
        world.apply(request_manifest("holder", ports=[(22, HOLDER_SOURCE)], duration="10m"))
        holder = world.wait_phase("holder", "Active")

    # While the operator is down, a day's worth of finished requests is in the API, and the
    # holder's ten minutes run out.
    closed = format_timestamp(clock.now())
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: finished_request(world, i, closed), range(FINISHED)))
    world.admin.advance_clock(timedelta(minutes=11))
    clock.shift(timedelta(minutes=11))

    started = time.monotonic()
    with operator_running(settings, clock=clock):
        world.apply(request_manifest("newcomer", ports=[(22, NEWCOMER_SOURCE)], duration="1h"))
        expired = world.wait_phase("holder", "Expired", timeout=PROMPTLY)
        closed_after = time.monotonic() - started
        newcomer = world.wait_phase("newcomer", "Active", timeout=NEWCOMER_DEADLINE)
        assert world.open_sources("vm-web-01", 22) == [NEWCOMER_SOURCE]
        assert world.status("JitAccessRequest", "done-00000")["phase"] == "Expired"

    assert closed_after < PROMPTLY, f"the overdue port closed {closed_after:.1f}s after the start"
    assert ts(expired["closedAt"]) >= ts(holder["expiresAt"])
    # Overdue first: the newcomer's port was opened only once the holder's was closed.
    assert ts(newcomer["startTime"]) >= ts(expired["closedAt"]).replace(microsecond=0)
