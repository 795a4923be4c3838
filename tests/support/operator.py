"""The operator for e2e tests: the real operator (kopf, Azure SDK, kubernetes client) run in
a background thread with its own event loop, against the session control plane and
emulator, watching only the test's namespace.

Time: the operator's clock and the emulator's clock are shifted together (``jump``), so an
expiry an hour away is reached at once, without sleeping.

Fixture ``jit`` gives a :class:`JitWorld`: the running operator plus helpers to apply
manifests, read objects and wait for conditions with deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from azure_arm_emulator.admin_client import SyncAdminClient
from azure_jit_devtools.localcluster.processes import free_port
from azure_jit_devtools.localcluster.processes import wait_for as poll_until
from azure_jit_operator.clock import Clock
from azure_jit_operator.config import Settings
from azure_jit_operator.domain.timestamps import parse_timestamp
from azure_jit_operator.run import run_operator
from tests.support.controlplane import ControlPlane
from tests.support.credentials import AsyncStaticTokenCredential
from tests.support.emulator import EmulatorEndpoint
from tests.support.identity import (
    AMBIENT_CREDENTIAL_VARIABLES,
    OPERATOR,
    workload_identity_env,
    write_service_account_token,
)

GROUP = "azurejit.dev"
VERSION = "v1alpha1"
PLURALS = {
    "JitPolicy": "jitpolicies",
    "JitAccessRequest": "jitaccessrequests",
    "JitAccessSchedule": "jitaccessschedules",
}
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-web"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 90.0

_T = TypeVar("_T")


def wait_for(
    predicate: Callable[[], _T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> _T:
    """Poll ``predicate`` until it returns something truthy; a test failure at the deadline."""
    try:
        return poll_until(predicate, timeout=timeout, what=what, interval=interval)
    except TimeoutError as exc:
        raise AssertionError(str(exc)) from None


@dataclass
class RunningOperator:
    """One operator instance in a background thread."""

    settings: Settings
    clock: Clock
    thread: threading.Thread
    stop_flag: threading.Event
    ready: threading.Event
    metrics_port: int = 0
    error: BaseException | None = None

    def stop(self) -> None:
        self.stop_flag.set()
        self.thread.join(STOP_TIMEOUT)
        if self.thread.is_alive():
            raise AssertionError("the operator did not stop within its graceful stop time")
        if self.error is not None:
            raise self.error


@contextlib.contextmanager
def operator_running(
    settings: Settings,
    *,
    clock: Clock | None = None,
    credential_factory: Callable[[Settings], Any] | None = None,
) -> Iterator[RunningOperator]:
    clock = clock or Clock()
    stop_flag = threading.Event()
    ready = threading.Event()
    port_known = threading.Event()
    handle = RunningOperator(
        settings=settings,
        clock=clock,
        thread=threading.Thread(name="operator", daemon=True),
        stop_flag=stop_flag,
        ready=ready,
    )

    def learn_port(port: int) -> None:
        handle.metrics_port = port
        port_known.set()

    def main() -> None:
        try:
            asyncio.run(
                run_operator(
                    settings,
                    clock=clock,
                    credential_factory=credential_factory
                    or (lambda _: AsyncStaticTokenCredential()),
                    stop_flag=stop_flag,
                    ready_flag=ready,
                    on_metrics_port=learn_port,
                )
            )
        except BaseException as exc:  # surfaced by stop() and by the start wait
            handle.error = exc
            port_known.set()

    handle.thread = threading.Thread(target=main, name="operator", daemon=True)
    handle.thread.start()
    wait_for(
        lambda: ready.is_set() or handle.error is not None,
        timeout=START_TIMEOUT,
        what="the operator to start",
    )
    if handle.error is not None:
        raise handle.error
    try:
        yield handle
    finally:
        handle.stop()


@dataclass
class JitWorld:
    """A test's view of Kubernetes + the emulator + the operator, in one namespace."""

    control_plane: ControlPlane
    emulator: EmulatorEndpoint
    admin: SyncAdminClient
    namespace: str
    operator: RunningOperator | None  # None when the test runs operator processes itself
    api: Any
    _extra: list[Any] = field(default_factory=list)

    # -- Kubernetes ------------------------------------------------------------------

    @property
    def custom(self) -> k8s.CustomObjectsApi:
        return k8s.CustomObjectsApi(self.api)

    def apply(self, manifest: dict[str, Any] | str | Path) -> dict[str, Any]:
        if isinstance(manifest, Path):
            manifest = yaml.safe_load(manifest.read_text())
        elif isinstance(manifest, str):
            manifest = yaml.safe_load(manifest)
        assert isinstance(manifest, dict)
        body: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURALS[manifest["kind"]], manifest
        )
        return body

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURALS[kind], name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return body

    def delete(self, kind: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURALS[kind], name
        )

    def patch_spec(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURALS[kind], name, {"spec": spec}
        )

    def status(self, kind: str, name: str) -> dict[str, Any]:
        body = self.get(kind, name) or {}
        return dict(body.get("status") or {})

    def condition(self, kind: str, name: str, type_: str) -> dict[str, Any] | None:
        return next(
            (c for c in self.status(kind, name).get("conditions", []) if c["type"] == type_),
            None,
        )

    def wait_phase(self, name: str, phase: str, *, timeout: float = 30.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status("JitAccessRequest", name)
            return status if status.get("phase") == phase else None

        try:
            return wait_for(reached, timeout=timeout, what=f"request {name} to be {phase}")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; status: {self.status('JitAccessRequest', name)}"
            ) from None

    def wait_policy_ready(self, name: str, *, timeout: float = 30.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            body = self.get("JitPolicy", name) or {}
            status = body.get("status") or {}
            cond = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
            current = status.get("observedGeneration") == body.get("metadata", {}).get("generation")
            return status if cond and cond["status"] == "True" and current else None

        try:
            return wait_for(ready, timeout=timeout, what=f"JitPolicy {name} to be Ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; status: {self.status('JitPolicy', name)}") from None

    def wait_gone(self, kind: str, name: str, *, timeout: float = 30.0) -> None:
        wait_for(lambda: self.get(kind, name) is None, timeout=timeout, what=f"{kind} {name} gone")

    def events(self, name: str) -> list[dict[str, str]]:
        items = (
            k8s.CoreV1Api(self.api)
            .list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}")
            .items
        )
        return [{"type": e.type, "reason": e.reason, "message": e.message} for e in items]

    def wait_event(self, name: str, reason: str, *, timeout: float = 15.0) -> dict[str, str]:
        return wait_for(
            lambda: next((e for e in self.events(name) if e["reason"] == reason), None),
            timeout=timeout,
            what=f"Event {reason} on {name}",
        )

    # -- Azure (emulator) --------------------------------------------------------------

    def _access(self, vm: str) -> dict[str, Any]:
        return self.admin.vm_access(SUBSCRIPTION, RESOURCE_GROUP, vm)

    def allow_rules(self, vm: str, port: int | None = None) -> list[dict[str, Any]]:
        """JIT allow rules targeting the VM on any NSG guarding it (NIC and subnet)."""
        rules = [r for g in self._access(vm)["guards"] for r in g["jitAllowRules"]]
        return [
            r
            for r in rules
            if port is None or str(port) == r["properties"].get("destinationPortRange")
        ]

    def deny_rules(self, vm: str) -> list[dict[str, Any]]:
        return [r for g in self._access(vm)["guards"] for r in g["jitDenyRules"]]

    def open_sources(self, vm: str, port: int) -> list[str]:
        return [
            source
            for entry in self._access(vm)["openPorts"]
            if entry["port"] == port
            for source in entry["sources"]
        ]

    def calls(self, operation: str, method: str | None = None) -> int:
        return self.admin.call_count(operation, method=method)

    def jump(self, delta: timedelta) -> None:
        """Move Azure's and the operator's clocks forward together."""
        assert self.operator is not None, "only an in-process operator's clock can be moved"
        self.admin.advance_clock(delta)
        self.operator.clock.shift(delta)

    def now(self) -> datetime:
        assert self.operator is not None, "only an in-process operator has a test clock"
        return self.operator.clock.now()


def ts(text: str) -> datetime:
    return parse_timestamp(text)


def operator_settings(
    control_plane: ControlPlane, emulator: EmulatorEndpoint, namespace: str, **overrides: Any
) -> Settings:
    base = Settings(
        arm_endpoint=emulator.base_url,
        ca_bundle=emulator.ca_path,
        kubeconfig=control_plane.kubeconfig,
        namespaces=(namespace,),
        standalone=True,
        metrics_port=0,
        close_grace=timedelta(seconds=10),
        log_format="plain",
    )
    return replace(base, **overrides).validated()


@pytest.fixture
def operator_overrides() -> dict[str, Any]:
    """Override in a test module (or with ``@pytest.mark.parametrize``) to change settings."""
    return {}


@contextlib.contextmanager
def jit_world(
    control_plane: ControlPlane,
    endpoint: EmulatorEndpoint,
    namespace: str,
    **overrides: Any,
) -> Iterator[JitWorld]:
    """An operator for ``namespace`` against ``endpoint``, the emulator reset to its world."""
    admin = endpoint.sync_admin()
    admin.reset()
    settings = operator_settings(control_plane, endpoint, namespace, **overrides)
    with (
        control_plane.api_client() as api,
        operator_running(settings) as running,
    ):
        yield JitWorld(
            control_plane=control_plane,
            emulator=endpoint,
            admin=admin,
            namespace=namespace,
            operator=running,
            api=api,
        )


@pytest.fixture
def world(
    control_plane: ControlPlane, emulator_endpoint: EmulatorEndpoint, namespace: str
) -> Iterator[JitWorld]:
    """What ``jit`` gives, without an operator: the test starts, stops or kills its own."""
    admin = emulator_endpoint.sync_admin()
    admin.reset()
    with control_plane.api_client() as api:
        yield JitWorld(
            control_plane=control_plane,
            emulator=emulator_endpoint,
            admin=admin,
            namespace=namespace,
            operator=None,
            api=api,
        )


@pytest.fixture
def jit(
    control_plane: ControlPlane,
    emulator_endpoint: EmulatorEndpoint,
    namespace: str,
    operator_overrides: dict[str, Any],
) -> Iterator[JitWorld]:
    with jit_world(control_plane, emulator_endpoint, namespace, **operator_overrides) as world:
        yield world


@dataclass
class OperatorProcess:
    """``azure-jit-operator run`` as a separate process: the real CLI, the real
    DefaultAzureCredential (Workload Identity against the emulator's Entra endpoint)."""

    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL: no graceful stop, no cleanup (what a node failure does)."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_operator_process(
    work_dir: Path,
    *,
    control_plane: ControlPlane,
    emulator: EmulatorEndpoint,
    namespace: str,
    env: dict[str, str] | None = None,
    name: str = "operator",
) -> OperatorProcess:
    work_dir.mkdir(parents=True, exist_ok=True)
    token_file = write_service_account_token(work_dir / "sa-token", OPERATOR.subject)
    port = free_port()
    environment = {
        key: value for key, value in os.environ.items() if key not in AMBIENT_CREDENTIAL_VARIABLES
    }
    environment.update(workload_identity_env(emulator, token_file=token_file))
    environment.update(
        {
            "PYTHONUNBUFFERED": "1",
            "AZURE_JIT_ARM_ENDPOINT": emulator.base_url,
            "AZURE_JIT_CA_BUNDLE": str(emulator.ca_path),
            "AZURE_JIT_KUBECONFIG": str(control_plane.kubeconfig),
            "AZURE_JIT_NAMESPACES": namespace,
            "AZURE_JIT_METRICS_PORT": str(port),
            "AZURE_JIT_STANDALONE": "true",
            "AZURE_JIT_LOG_FORMAT": "json",
            **(env or {}),
        }
    )
    log_path = work_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "azure_jit_operator.cli", "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
        )
    handle = OperatorProcess(process=process, log_path=log_path, metrics_port=port)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the operator exited with {process.returncode}:\n{handle.log()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_for(ready, timeout=START_TIMEOUT, what="the operator process to be ready")
    except BaseException:
        handle.stop()
        raise
    return handle


def operator_starter(
    world: JitWorld, work_dir: Path, *, env: dict[str, str] | None = None
) -> Callable[[str], OperatorProcess]:
    """Start ``azure-jit-operator run`` processes for ``world`` by name (a test that kills
    one and starts the next)."""

    def start(name: str) -> OperatorProcess:
        return start_operator_process(
            work_dir,
            control_plane=world.control_plane,
            emulator=world.emulator,
            namespace=world.namespace,
            env=env,
            name=name,
        )

    return start
