"""The real Kubernetes control plane (etcd + kube-apiserver) for integration tests, as a
pytest plugin. The control plane itself lives in :mod:`azure_jit_devtools.localcluster`
(the demo uses it too); this module adds the test policy around it: building the binaries
once per session before any test runs, skipping locally without Go and failing under
``CI=true``, the session ``control_plane`` fixture and the per-test ``namespace``.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from azure_jit_devtools.localcluster.binaries import BinariesUnavailableError
from azure_jit_devtools.localcluster.binaries import locate_binaries as _locate
from azure_jit_devtools.localcluster.cluster import (
    KUBECTL_CACHE,
    ControlPlane,
    install_crds,
    service_account_kubeconfig,
)
from azure_jit_devtools.localcluster.cluster import start_control_plane as _start
from azure_jit_devtools.localcluster.processes import ControlPlaneError, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = REPO_ROOT / "crds"
BUILD_SCRIPT = REPO_ROOT / "hack" / "envtest" / "build.sh"

__all__ = [
    "CRD_DIR",
    "KUBECTL_CACHE",
    "REPO_ROOT",
    "BinariesUnavailableError",
    "ControlPlane",
    "ControlPlaneError",
    "in_ci",
    "install_crds",
    "locate_binaries",
    "service_account_kubeconfig",
    "start_control_plane",
    "wait_for",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def locate_binaries(*, progress: Callable[[str], None] = lambda line: None) -> Path:
    return _locate(BUILD_SCRIPT, progress=progress)


def start_control_plane(
    bin_dir: Path, *, crd_dir: Path | None = CRD_DIR
) -> AbstractContextManager[ControlPlane]:
    return _start(bin_dir, crd_dir=crd_dir)


# --------------------------------------------------------------------------- pytest plugin

_BINARIES_KEY = pytest.StashKey[Path | BaseException]()
_SUMMARY_KEY = pytest.StashKey[list[str]]()
FIXTURE = "control_plane"


def _summary(config: pytest.Config, line: str) -> None:
    config.stash.setdefault(_SUMMARY_KEY, []).append(line)


def _obtain_binaries(config: pytest.Config) -> Path | BaseException:
    """Locate/build once per session, outside any test's timeout, showing build progress."""
    if _BINARIES_KEY in config.stash:
        return config.stash[_BINARIES_KEY]
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def progress(line: str) -> None:
        if reporter is not None and not line.startswith("envtest: reusing"):
            reporter.write_line(line)

    started = time.monotonic()
    outcome: Path | BaseException
    try:
        outcome = locate_binaries(progress=progress)
    except (BinariesUnavailableError, ControlPlaneError) as exc:
        outcome = exc
    else:
        _summary(config, f"binaries in {outcome} ({time.monotonic() - started:.1f}s to locate)")
    config.stash[_BINARIES_KEY] = outcome
    return outcome


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects, so `-m "not integration"` works
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if FIXTURE in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Building may take tens of minutes the first time: do it here, before any test runs,
    # so no per-test timeout applies, and only when a selected test needs the control plane.
    if session.config.option.collectonly:
        return
    if any(FIXTURE in getattr(item, "fixturenames", ()) for item in session.items):
        _obtain_binaries(session.config)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_SUMMARY_KEY, [])
    if lines:
        terminalreporter.write_sep("-", "control plane")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def control_plane(pytestconfig: pytest.Config) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver with ``crds/`` installed, shared by the whole session."""
    outcome = _obtain_binaries(pytestconfig)
    if isinstance(outcome, BinariesUnavailableError) and not in_ci():
        pytest.skip(f"no control plane: {outcome} (run `make envtest` once to get it)")
    if isinstance(outcome, BaseException):
        hint = " [CI=true: a missing control plane is a failure]" if in_ci() else ""
        pytest.fail(f"no control plane: {outcome}{hint}", pytrace=False)
    with start_control_plane(outcome) as control_plane:
        _summary(
            pytestconfig,
            f"etcd + kube-apiserver up, CRDs Established in {control_plane.start_seconds:.1f}s "
            f"(process start -> CRDs Established) at {control_plane.server}",
        )
        yield control_plane


_NOT_DNS = re.compile(r"[^a-z0-9-]+")


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test. On teardown the delete is issued but not
    awaited: without kube-controller-manager no namespace controller empties it, so it stays
    Terminating (and its objects stay in etcd) until the session's etcd is thrown away.
    Terminating still matters: admission refuses new objects in it, so a straggler from a
    finished test cannot quietly keep writing there. Tests that look cluster-wide must scope
    themselves to their own namespace."""
    stem = _NOT_DNS.sub("-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{stem}-{secrets.token_hex(3)}"
    with control_plane.api_client() as api:
        k8s.CoreV1Api(api).create_namespace(
            k8s.V1Namespace(
                metadata=k8s.V1ObjectMeta(name=name, labels={"azurejit.dev/test": "true"})
            )
        )
    yield name
    with control_plane.api_client() as api:
        k8s.CoreV1Api(api).delete_namespace(name)
