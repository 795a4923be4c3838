"""After the operator is killed and started again, its open_ports gauge is rebuilt from what
the NSG shows, not reset to zero: a new process starts with empty metrics, so the operator
runs here as a real separate process through the real CLI (`azure-jit-operator run`),
authenticating with DefaultAzureCredential (Workload Identity, exactly as on AKS) against the
emulator's Entra endpoint.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from tests.support.controlplane import ControlPlane
from tests.support.emulator import OPERATOR_DIR, REPO_ROOT, EmulatorEndpoint
from tests.support.identity import (
    AMBIENT_CREDENTIAL_VARIABLES,
    OPERATOR,
    workload_identity_env,
    write_service_account_token,
)
from tests.support.manifests import API_VERSION, policy_manifest, port_rule, request_manifest
from tests.support.operator import PLURALS, wait_for
from tests.support.prometheus import Scrape, http_status, scrape

GROUP, VERSION = API_VERSION.split("/")
SERVING = re.compile(r"serving /metrics, /healthz and /readyz on 127\.0\.0\.1:(\d+)")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 90.0
POLICY = policy_manifest(
    "web-admins",
    vms={"vm-web-01": [port_rule(22, prefixes=["198.51.100.0/24"], max_duration="3h")]},
)


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int = 0

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def metrics(self) -> Scrape:
        return scrape(self.metrics_port)

    def kill(self) -> None:
        """SIGKILL: no graceful stop, nothing flushed, as when a node dies."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)


def _environment(
    control_plane: ControlPlane, emulator: EmulatorEndpoint, namespace: str, token_file: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in AMBIENT_CREDENTIAL_VARIABLES}
    env.update(workload_identity_env(emulator, token_file=token_file))
    env.update(
        {
            "AZURE_JIT_ARM_ENDPOINT": emulator.base_url,
            "AZURE_JIT_CA_BUNDLE": str(emulator.ca_path),
            "AZURE_JIT_KUBECONFIG": str(control_plane.kubeconfig),
            "AZURE_JIT_NAMESPACES": namespace,
            "AZURE_JIT_METRICS_PORT": "0",
            "AZURE_JIT_BIND_ADDRESS": "127.0.0.1",
            "AZURE_JIT_STANDALONE": "true",
            "AZURE_JIT_LOG_FORMAT": "plain",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(OPERATOR_DIR), str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
            ),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start_operator(env: dict[str, str], log_path: Path) -> OperatorProcess:
    """`azure-jit-operator run` as a child process; returns once /readyz answers 200."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "azure_jit_operator.cli", "run"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    handle = OperatorProcess(process=process, log_path=log_path)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the operator exited with {process.returncode}:\n{handle.log()}")
        if not handle.metrics_port:
            found = SERVING.search(handle.log())
            if found is None:
                return False
            handle.metrics_port = int(found[1])
        return http_status(handle.metrics_port, "/readyz")[0] == 200

    try:
        wait_for(ready, timeout=START_TIMEOUT, what="the operator process to be ready")
    except BaseException:
        handle.stop()
        raise
    return handle


@pytest.fixture
def operator_env(
    control_plane: ControlPlane,
    emulator_endpoint: EmulatorEndpoint,
    namespace: str,
    tmp_path: Path,
) -> dict[str, str]:
    token = write_service_account_token(tmp_path / "sa-token", OPERATOR.subject)
    return _environment(control_plane, emulator_endpoint, namespace, token)


@pytest.fixture
def custom(control_plane: ControlPlane) -> Iterator[k8s.CustomObjectsApi]:
    with control_plane.api_client() as api:
        yield k8s.CustomObjectsApi(api)


def _apply(custom: k8s.CustomObjectsApi, namespace: str, manifest: dict[str, Any]) -> None:
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[manifest["kind"]], manifest
    )


def _phase(custom: k8s.CustomObjectsApi, namespace: str, name: str) -> str | None:
    try:
        body = custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "jitaccessrequests", name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return str((body.get("status") or {}).get("phase", "")) or None


def test_open_ports_is_rebuilt_from_the_nsg_after_the_operator_is_killed(
    operator_env: dict[str, str],
    emulator_endpoint: EmulatorEndpoint,
    custom: k8s.CustomObjectsApi,
    namespace: str,
    tmp_path: Path,
) -> None:
    admin = emulator_endpoint.sync_admin()
    port_22 = {"namespace": namespace, "policy": "web-admins", "vm": "vm-web-01", "port": "22"}
    first = start_operator(operator_env, tmp_path / "first.log")
    try:
        _apply(custom, namespace, POLICY)
        _apply(custom, namespace, request_manifest("ssh-inc-4711", duration="1h"))
        wait_for(
            lambda: _phase(custom, namespace, "ssh-inc-4711") == "Active",
            timeout=60,
            what="the request to be Active",
        )
        wait_for(
            lambda: first.metrics().value("azure_jit_open_ports", **port_22) == 1,
            timeout=10,
            what="the first operator to report the open port",
        )
        # The token came from the emulator's Entra endpoint, as on AKS.
        assert admin.call_count("Entra_Token") >= 1
    finally:
        first.kill()

    second = start_operator(operator_env, tmp_path / "second.log")
    try:
        rebuilt = wait_for(
            lambda: second.metrics().value("azure_jit_open_ports", **port_22) == 1,
            timeout=30,
            what="the restarted operator to report the open port",
        )
        assert rebuilt
        resumed = second.metrics()
        # Rebuilt by reading the NSG, not by opening again or counting the request twice.
        assert admin.call_count("JitNetworkAccessPolicies_Initiate") == 1
        assert resumed.series("azure_jit_requests_total", namespace=namespace) == []
        assert resumed.total("azure_jit_request_open_seconds_count") == 0

        custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "jitaccessrequests", "ssh-inc-4711"
        )
        wait_for(
            lambda: _phase(custom, namespace, "ssh-inc-4711") is None,
            timeout=60,
            what="the revoked request to be gone",
        )
        wait_for(
            lambda: second.metrics().value("azure_jit_open_ports", **port_22) == 0,
            timeout=10,
            what="the revoked port to be reported closed",
        )
        closed = second.metrics()
        assert closed.value(
            "azure_jit_requests_total", namespace=namespace, policy="web-admins", outcome="Revoked"
        )
    finally:
        second.stop()
    assert second.process.returncode == 0, second.log()[-3000:]
