"""A replica paused by kopf peering forgets who held which port: while its peer was active,
requests it knew were closed (and others opened), so on resuming it lists the requests'
status again instead of trusting what it knew before the pause.

Here the request the first replica opened is revoked by the peer; once the first replica
resumes, a request from another source for the same port opens at once rather than waiting
(up to an hour) for a holder that is gone."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from tests.support.controlplane import REPO_ROOT, ControlPlane, start_control_plane
from tests.support.emulator import EmulatorEndpoint
from tests.support.logs import LogWatch
from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld, operator_running, operator_settings, wait_for

NAMESPACE = "team-web"
PEERING_CRDS = REPO_ROOT / "deploy" / "crds" / "kopf-peering-crds.yaml"
FIRST_SOURCE = "198.51.100.7/32"
SECOND_SOURCE = "203.0.113.9/32"
POLICY = policy_manifest(
    vms={"vm-web-01": [port_rule(22, prefixes=["198.51.100.0/24", "203.0.113.0/24"])]}
)


@pytest.fixture
def peered_cluster(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    """An API server of its own with kopf's peering CRDs and the namespace's KopfPeering
    (the session's has no peering CRDs: every other test runs a standalone operator)."""
    with start_control_plane(control_plane.bin_dir) as plane:
        plane.kubectl("apply", "-f", str(PEERING_CRDS), check=True)
        plane.kubectl(
            "wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev", check=True
        )
        plane.kubectl("create", "namespace", NAMESPACE, check=True)
        with plane.api_client() as api:
            k8s.CustomObjectsApi(api).create_namespaced_custom_object(
                "kopf.dev",
                "v1",
                NAMESPACE,
                "kopfpeerings",
                {
                    "apiVersion": "kopf.dev/v1",
                    "kind": "KopfPeering",
                    "metadata": {"name": "azure-jit-operator"},
                },
            )
        yield plane


@pytest.fixture
def kopf_log() -> Iterator[LogWatch]:
    with LogWatch() as handler:
        yield handler


def test_a_replica_resuming_after_its_peer_does_not_wait_for_a_holder_that_is_gone(
    peered_cluster: ControlPlane, emulator_endpoint: EmulatorEndpoint, kopf_log: LogWatch
) -> None:
    admin = emulator_endpoint.sync_admin()
    admin.reset()
    settings = dataclasses.replace(
        operator_settings(peered_cluster, emulator_endpoint, NAMESPACE), standalone=False
    )
    with (
        peered_cluster.api_client() as api,
        operator_running(dataclasses.replace(settings, peering_priority=100)) as first,
    ):
        jit = JitWorld(
            control_plane=peered_cluster,
            emulator=emulator_endpoint,
            admin=admin,
            namespace=NAMESPACE,
            operator=first,
            api=api,
        )
        jit.apply(POLICY)
        jit.wait_policy_ready("web-admins")
        jit.apply(request_manifest("early", ports=[(22, FIRST_SOURCE)], duration="1h"))
        jit.wait_phase("early", "Active")

        with operator_running(dataclasses.replace(settings, peering_priority=200)):
            wait_for(
                lambda: kopf_log.seen("Pausing operations in favour of") >= 1,
                timeout=30,
                what="the first replica to pause",
            )
            resumed = kopf_log.seen("Resuming operations")
            # The peer revokes the request the first replica opened.
            jit.delete("JitAccessRequest", "early")
            jit.wait_gone("JitAccessRequest", "early")
            assert jit.open_sources("vm-web-01", 22) == []

        wait_for(
            lambda: kopf_log.seen("Resuming operations") > resumed,
            timeout=30,
            what="the first replica to resume",
        )
        jit.apply(request_manifest("later", ports=[(22, SECOND_SOURCE)], duration="1h"))
        jit.wait_phase("later", "Active")
        assert jit.open_sources("vm-web-01", 22) == [SECOND_SOURCE]
