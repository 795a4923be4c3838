"""The emulator image, loaded from the archive ``make image`` wrote and run by podman as the
demo overlay's sidecar runs it (uid 65532, read-only root file system, an in-memory /tmp, its
certificates in a volume shared with the operator): it serves ARM, Entra ID and its admin API,
the sidecar's startup probe passes, and it stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from pathlib import Path

import pytest

from azure_arm_emulator.admin_client import SyncAdminClient
from azure_jit_devtools.localcluster.processes import free_port
from tests.support.emulator import READY
from tests.support.identity import TENANT_ID
from tests.support.image import OciImage, Podman, running, wait_for_log

pytestmark = pytest.mark.image

CERT_DIR = "/var/run/azure-jit-emulator"  # the demo sidecar's emulator-certs volume
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
START_TIMEOUT = 60.0


def test_the_emulator_image_serves_the_default_world_and_stops_cleanly(
    podman: Podman, emulator_image: OciImage, tmp_path: Path
) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    os.chown(certs, 65532, 65532)  # an emptyDir the sidecar's user writes
    port = free_port()
    container = podman.start(
        podman.load(emulator_image),
        name=f"azure-arm-emulator-{port}",
        log_path=tmp_path / "emulator.log",
        # The demo sidecar's arguments, on a free port.
        args=["--port", str(port), "--cert-dir", CERT_DIR],
        writable_mounts={certs: CERT_DIR},
    )
    with running(container):
        ready = wait_for_log(container, READY.pattern, timeout=START_TIMEOUT)
        assert ready["url"] == f"https://127.0.0.1:{port}"
        assert ready["ca"] == f"{CERT_DIR}/ca.pem"
        ca_path = certs / "ca.pem"  # the same file, seen from the host

        # The demo sidecar's startup probe, run inside the container as the kubelet would.
        probe = container.exec(
            "python",
            "-c",
            f'import socket; socket.create_connection(("127.0.0.1", {port}), 2).close()',
        )
        assert probe.returncode == 0, probe.stderr

        admin = SyncAdminClient(ready["url"], ca_path)
        assert admin.health()
        access = admin.vm_access(SUBSCRIPTION, "rg-web", "vm-web-01")
        assert access["guards"], "the default world's VM is guarded by its NSGs"

        # Entra ID's discovery document, which azure-identity reads before a token exchange.
        context = ssl.create_default_context(cafile=str(ca_path))
        with urllib.request.urlopen(
            f"{ready['url']}/{TENANT_ID}/v2.0/.well-known/openid-configuration",
            context=context,
            timeout=5,
        ) as response:
            assert "token_endpoint" in json.load(response)

    assert container.process.returncode == 0, f"not a clean stop:\n{container.log()}"
