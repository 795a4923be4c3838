"""``kubectl jit`` as people run it: a separate process per command, each person with their
own kubeconfig (a real identity, see :mod:`tests.support.kube_users`), against the real
API server with the operator and its admission webhooks running.

Fixture ``cli`` gives a :class:`CliWorld`: the :class:`~tests.support.operator.JitWorld`
plus ``run`` (wait for the command) and ``start`` (a command that waits, e.g. ``--wait``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.approvals import USERS, rbac, webhooks_world
from tests.support.controlplane import ControlPlane
from tests.support.emulator import EmulatorEndpoint
from tests.support.kube_users import KubeUser, kube_user, subject_for
from tests.support.operator import JitWorld

COMMAND_TIMEOUT = 60.0
MODULE = "azure_jit_operator.kubectl_jit"
POLICY_ARGS = ("--policy", "web-admins", "--vm", "vm-web-01")


@dataclass(frozen=True)
class Done:
    """A finished command: exit code and what it printed."""

    code: int
    out: str
    err: str

    @property
    def created(self) -> str:
        """The request name a ``request`` command printed."""
        found = re.search(r"jitaccessrequest/(\S+) created", self.out)
        assert found, f"no request name in the output: {self}"
        return found.group(1)


@dataclass
class CliWorld:
    world: JitWorld
    users: dict[str, KubeUser]
    _running: list[subprocess.Popen[str]] = field(default_factory=list)

    def user(self, name: str) -> KubeUser:
        return self.users[name]

    def env(self, name: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("KUBECTL_JIT_") and key != "KUBECONFIG"
        }
        environment.update(
            {"KUBECONFIG": str(self.users[name].kubeconfig), "PYTHONWARNINGS": "error"}
        )
        environment.update(extra or {})
        return environment

    def run(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> Done:
        """``kubectl jit <args>`` as ``name``; the namespace comes from their kubeconfig."""
        done = subprocess.run(
            [sys.executable, "-m", MODULE, *args],
            capture_output=True,
            text=True,
            env=self.env(name, env),
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        return Done(done.returncode, done.stdout, done.stderr)

    def start(self, name: str, *args: str) -> subprocess.Popen[str]:
        """A command left running (``--wait``); :meth:`finish` collects it."""
        process = subprocess.Popen(
            [sys.executable, "-m", MODULE, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env(name),
        )
        self._running.append(process)
        return process

    def finish(self, process: subprocess.Popen[str]) -> Done:
        out, err = process.communicate(timeout=COMMAND_TIMEOUT)
        return Done(process.returncode, out, err)

    def stop_all(self) -> None:
        for process in self._running:
            if process.poll() is None:
                process.kill()
            process.communicate()


def request_args(*extra: str, port: int = 22, source: str = "198.51.100.7/32") -> list[str]:
    return [
        "request",
        *POLICY_ARGS,
        "--port",
        str(port),
        "--for",
        "1h",
        "--reason",
        "INC-4711 disk full",
        "--from",
        source,
        *extra,
    ]


def events_reader(namespace: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Reading Events, for ``kubectl jit status`` (the requester role alone does not)."""
    subject = subject_for(namespace)
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "events-reader", "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "events-readers", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "events-reader",
            },
            "subjects": [subject(n) for n in names],
        },
    ]


@pytest.fixture
def cli(
    control_plane: ControlPlane,
    emulator_endpoint: EmulatorEndpoint,
    namespace: str,
    tmp_path: Path,
) -> Iterator[CliWorld]:
    """alice, bob, carol and dave as ServiceAccounts with the approval RBAC of
    :mod:`tests.support.approvals` (bob and carol approve), the operator with webhooks."""
    users = {
        name: kube_user(control_plane, namespace=namespace, name=name, directory=tmp_path)
        for name in USERS
    }
    manifests = [
        *rbac(namespace, subject=subject_for(namespace)),
        *events_reader(namespace, USERS),
    ]
    with webhooks_world(control_plane, emulator_endpoint, namespace, manifests=manifests) as world:
        cli_world = CliWorld(world=world, users=users)
        try:
            yield cli_world
        finally:
            cli_world.stop_all()


def kubectl_plugin(
    control_plane: ControlPlane, kubeconfig: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``kubectl jit <args>`` through kubectl's plugin mechanism: ``kubectl-jit`` found on
    PATH next to this Python (the console script of the installed package)."""
    scripts = Path(sys.executable).parent
    assert (scripts / "kubectl-jit").exists(), f"no kubectl-jit console script in {scripts}"
    env = {
        **os.environ,
        "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": str(kubeconfig),
        "KUBERC": "off",
        "KUBECACHEDIR": str(control_plane.work_dir / "kubectl-cache"),
    }
    return subprocess.run(
        [str(control_plane.bin_dir / "kubectl"), "jit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
