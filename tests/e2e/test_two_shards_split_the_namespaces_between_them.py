"""Sharding beyond one replica, with what Kubernetes already has: two operator Deployments,
each watching its own set of namespaces with its own peering name. Each opens and closes
only its own namespaces' requests, and neither pauses for the other."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from datetime import timedelta

import pytest
from kubernetes import client as k8s

from tests.support.controlplane import REPO_ROOT, ControlPlane, start_control_plane
from tests.support.emulator import EmulatorEndpoint
from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import (
    JitWorld,
    RunningOperator,
    operator_running,
    operator_settings,
    ts,
)

PEERING_CRDS = REPO_ROOT / "deploy" / "crds" / "kopf-peering-crds.yaml"
SHARDS = {"team-web": "jit-shard-web", "team-db": "jit-shard-db"}
SOURCE = "198.51.100.7/32"


@pytest.fixture
def sharded_cluster(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    """An API server with kopf's peering CRDs, two namespaces, each with its shard's
    KopfPeering."""
    with start_control_plane(control_plane.bin_dir) as plane:
        plane.kubectl("apply", "-f", str(PEERING_CRDS), check=True)
        plane.kubectl(
            "wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev", check=True
        )
        with plane.api_client() as api:
            for namespace, peering in SHARDS.items():
                k8s.CoreV1Api(api).create_namespace(
                    k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
                )
                k8s.CustomObjectsApi(api).create_namespaced_custom_object(
                    "kopf.dev",
                    "v1",
                    namespace,
                    "kopfpeerings",
                    {
                        "apiVersion": "kopf.dev/v1",
                        "kind": "KopfPeering",
                        "metadata": {"name": peering},
                    },
                )
        yield plane


def test_two_shards_each_serve_only_their_namespaces_and_neither_pauses_the_other(
    sharded_cluster: ControlPlane, emulator_endpoint: EmulatorEndpoint
) -> None:
    admin = emulator_endpoint.sync_admin()
    admin.reset()

    def shard(namespace: str, priority: int) -> ContextManager[RunningOperator]:
        settings = operator_settings(sharded_cluster, emulator_endpoint, namespace)
        return operator_running(
            dataclasses.replace(
                settings,
                standalone=False,
                peering_name=SHARDS[namespace],
                peering_priority=priority,
            )
        )

    with sharded_cluster.api_client() as api, shard("team-web", 100) as web:
        worlds = {
            namespace: JitWorld(
                control_plane=sharded_cluster,
                emulator=emulator_endpoint,
                admin=admin,
                namespace=namespace,
                operator=web,
                api=api,
            )
            for namespace in SHARDS
        }
        team_web, team_db = worlds["team-web"], worlds["team-db"]
        team_web.apply(policy_manifest(vms={"vm-web-01": [port_rule(22), port_rule(3389)]}))
        team_db.apply(policy_manifest("db-admins", vms={"vm-db-01": [port_rule(22)]}))
        team_web.apply(request_manifest("web", ports=[(22, SOURCE)], duration="30m"))
        team_db.apply(
            request_manifest(
                "db", policy="db-admins", vm="vm-db-01", ports=[(22, SOURCE)], duration="30m"
            )
        )
        web_active = team_web.wait_phase("web", "Active")
        # The web shard never touches team-db: nothing there is reconciled until its shard runs.
        assert team_db.status("JitPolicy", "db-admins") == {}
        assert team_db.status("JitAccessRequest", "db") == {}
        assert team_db.open_sources("vm-db-01", 22) == []

        with shard("team-db", 200) as db:
            team_db.operator = db
            db_active = team_db.wait_phase("db", "Active", timeout=60)
            assert team_db.open_sources("vm-db-01", 22) == [SOURCE]
            # A shard of higher priority under another peering name pauses nobody: the web
            # shard still opens new requests while the db shard runs.
            team_web.apply(request_manifest("web-2", ports=[(3389, SOURCE)], duration="30m"))
            team_web.wait_phase("web-2", "Active", timeout=60)

            # Both shards close their own ports at expiry (each shard's clock and Azure's).
            latest = max(ts(web_active["expiresAt"]), ts(db_active["expiresAt"]))
            delta = latest - team_web.now() + timedelta(seconds=1)
            admin.advance_clock(delta)
            web.clock.shift(delta)
            db.clock.shift(delta)
            team_web.wait_phase("web", "Expired", timeout=60)
            team_db.wait_phase("db", "Expired", timeout=60)
            assert team_web.open_sources("vm-web-01", 22) == []
            assert team_db.open_sources("vm-db-01", 22) == []
