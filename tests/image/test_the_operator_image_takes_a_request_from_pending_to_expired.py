"""The operator image, loaded from the archive ``make image`` wrote and run by podman as the
Deployment runs it (uid 65532, read-only root file system, an in-memory /tmp, no
capabilities), against the test control plane and the emulator: one JitAccessRequest goes
from Pending (no policy yet) to Active and, in real time, to Expired, the port closed again.

What the pod would get from Kubernetes and the AKS Workload Identity webhook comes in as the
e2e tests' operator processes get it (tests/support/operator.py ``start_operator_process``):
a kubeconfig, the emulator's CA bundle and a projected-style service account token, here
bind-mounted read-only, and the same AZURE_JIT_* and AZURE_* variables."""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path

import pytest
import yaml

from azure_jit_devtools.localcluster.processes import free_port
from tests.support.controlplane import ControlPlane
from tests.support.identity import OPERATOR, workload_identity_env, write_service_account_token
from tests.support.image import Container, OciImage, Podman, running
from tests.support.manifests import policy_manifest, request_manifest
from tests.support.operator import JitWorld, wait_for

pytestmark = pytest.mark.image

MOUNT = "/var/run/azure-jit"  # where the pod's files are mounted, read-only
START_TIMEOUT = 60.0


def _embedded(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _kubeconfig(control_plane: ControlPlane) -> str:
    """The control plane's admin kubeconfig with its files embedded: the kubernetes client
    writes them to temporary files, into the container's /tmp, as it would in a pod."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "envtest",
                    "cluster": {
                        "server": control_plane.server,
                        "certificate-authority-data": _embedded(control_plane.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "envtest-admin",
                    "user": {
                        "client-certificate-data": _embedded(control_plane.admin_cert),
                        "client-key-data": _embedded(control_plane.admin_key),
                    },
                }
            ],
            "contexts": [
                {"name": "envtest", "context": {"cluster": "envtest", "user": "envtest-admin"}}
            ],
            "current-context": "envtest",
        }
    )


def _start_operator(
    podman: Podman, image: OciImage, world: JitWorld, work_dir: Path
) -> tuple[Container, int]:
    files = work_dir / "mounted"
    files.mkdir(parents=True)
    files.chmod(0o755)
    (files / "kubeconfig").write_text(_kubeconfig(world.control_plane))
    (files / "ca.pem").write_bytes(world.emulator.ca_path.read_bytes())
    write_service_account_token(files / "sa-token", OPERATOR.subject)
    for path in files.iterdir():
        path.chmod(0o644)  # readable by uid 65532
    port = free_port()
    env = {
        **workload_identity_env(world.emulator, token_file=Path(MOUNT) / "sa-token"),
        "AZURE_JIT_ARM_ENDPOINT": world.emulator.base_url,
        "AZURE_JIT_CA_BUNDLE": f"{MOUNT}/ca.pem",
        "AZURE_JIT_KUBECONFIG": f"{MOUNT}/kubeconfig",
        "AZURE_JIT_NAMESPACES": world.namespace,
        "AZURE_JIT_METRICS_PORT": str(port),
        "AZURE_JIT_STANDALONE": "true",
        "AZURE_JIT_LOG_FORMAT": "json",
        "AZURE_JIT_CLOSE_GRACE": "10s",
        "POD_ID": "azure-jit-operator-image-test",
    }
    image_id = podman.load(image)
    container = podman.start(
        image_id,
        name=f"azure-jit-operator-{world.namespace}",
        log_path=work_dir / "operator.log",
        env=env,
        mounts={files: MOUNT},
    )
    return container, port


def _ready(container: Container, port: int) -> bool:
    if not container.running():
        raise AssertionError(f"the operator container exited:\n{container.log()}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _inside(container: Container) -> dict[str, object]:
    """Who runs and what can be written, seen from inside the running container."""
    probe = (
        "import json, os, tempfile\n"
        "def writable(d):\n"
        "    try:\n"
        "        tempfile.TemporaryFile(dir=d).close()\n"
        "        return True\n"
        "    except OSError:\n"
        "        return False\n"
        "print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(),\n"
        "    'writable': {d: writable(d) for d in ('/', '/app', '/tmp', '/var/run/azure-jit')},\n"
        "    'status': open('/proc/1/status').read()}))\n"
    )
    done = container.exec("python", "-c", probe)
    assert done.returncode == 0, done.stderr
    seen: dict[str, object] = json.loads(done.stdout)
    return seen


def test_the_operator_image_takes_a_request_from_pending_to_active_to_expired(
    podman: Podman, operator_image: OciImage, world: JitWorld, tmp_path: Path
) -> None:
    world.admin.update_settings(never_revoke=True)  # only the operator closes the port
    container, port = _start_operator(podman, operator_image, world, tmp_path)
    with running(container):
        wait_for(
            lambda: _ready(container, port),
            timeout=START_TIMEOUT,
            what="the operator container to be ready",
            interval=0.5,
        )
        inside = _inside(container)
        assert (inside["uid"], inside["gid"]) == (65532, 65532)
        assert inside["writable"] == {
            "/": False,
            "/app": False,
            "/tmp": True,
            "/var/run/azure-jit": False,
        }, "only the emptyDir-like /tmp is writable"
        status = str(inside["status"])
        assert "CapEff:\t0000000000000000" in status, "every capability dropped"
        assert "NoNewPrivs:\t1" in status

        world.apply(request_manifest(duration="1m"))
        world.wait_phase("ssh-inc-4711", "Pending")
        world.apply(policy_manifest())
        world.wait_policy_ready("web-admins")
        world.wait_phase("ssh-inc-4711", "Active")
        assert world.open_sources("vm-web-01", 22) == ["198.51.100.7/32"]
        world.wait_phase("ssh-inc-4711", "Expired", timeout=120)
        assert world.allow_rules("vm-web-01", 22) == []
        assert {"Opened", "Expired"} <= {e["reason"] for e in world.events("ssh-inc-4711")}

    assert container.process.returncode == 0, f"not a clean stop:\n{container.log()[-3000:]}"
    log = container.log()
    assert "Traceback" not in log, log[-3000:]
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert records, f"no JSON log records (AZURE_JIT_LOG_FORMAT=json):\n{log[-3000:]}"
