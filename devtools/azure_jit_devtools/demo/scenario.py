"""The demo scenario: start everything, apply the examples, narrate, clean up."""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import yaml
from kubernetes import client as k8s

from azure_arm_emulator.admin_client import SyncAdminClient
from azure_jit_devtools.demo.processes import Child, free_port, start_emulator, start_operator
from azure_jit_devtools.localcluster.cluster import ControlPlane, start_control_plane
from azure_jit_devtools.localcluster.processes import wait_for

NAMESPACE = "team-web"
GROUP, VERSION = "azurejit.dev", "v1alpha1"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-web"
# The default emulator world's operator identity (federated with this ServiceAccount).
TENANT_ID = "cccccccc-cccc-cccc-cccc-cccccccccccc"
OPERATOR_CLIENT_ID = "a1a1a1a1-0000-4000-8000-000000000001"
OPERATOR_SA = ("azure-jit-system", "azure-jit-operator")
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
DEMO_DURATION = "1m"


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bin-dir", type=Path, help="etcd, kube-apiserver, kubectl (make envtest)")
    parser.add_argument(
        "--repo", type=Path, default=Path.cwd(), help="checkout with crds/ and examples/"
    )
    parser.add_argument("--keep", action="store_true", help="keep everything running at the end")


def run(args: argparse.Namespace) -> int:
    bin_dir = args.bin_dir or (
        Path(os.environ["KUBEBUILDER_ASSETS"]) if "KUBEBUILDER_ASSETS" in os.environ else None
    )
    if bin_dir is None:
        print(
            "azure-jit-dev demo: pass --bin-dir (make demo does: it builds them first)",
            file=sys.stderr,
        )
        return 2
    # SIGTERM (a `kill`, or a terminal closing) stops the demo as Ctrl-C does: its control
    # plane, emulator and operator are stopped and removed, not left running.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        Demo(bin_dir=bin_dir, repo=args.repo, keep=args.keep).run()
    except KeyboardInterrupt:
        say("interrupted; cleaning up")
        return 130
    except Exception as exc:  # the narration ends with the reason, not a bare traceback
        say(f"the demo failed: {exc}")
        return 1
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def say(text: str = "", *, indent: int = 0) -> None:
    print(" " * indent + text, flush=True)


class Demo:
    def __init__(self, *, bin_dir: Path, repo: Path, keep: bool) -> None:
        self.bin_dir = bin_dir
        self.repo = repo
        self.keep = keep
        self.started = time.monotonic()

    def run(self) -> None:
        work = Path(tempfile.mkdtemp(prefix="azure-jit-demo-"))
        say("azure-jit-operator demo: Azure JIT access, declared in Kubernetes\n")
        try:
            with start_control_plane(self.bin_dir, crd_dir=self.repo / "crds") as plane:
                say(
                    "1/6 control plane: etcd + kube-apiserver up, CRDs installed "
                    f"({plane.start_seconds:.1f}s)"
                )
                with self._emulator(work) as (base_url, ca, admin):
                    say(f"2/6 Azure: the emulator serves ARM and Entra ID at {base_url}")
                    with self._operator(work, plane, base_url, ca) as metrics:
                        self._scenario(plane, admin, metrics)
                        if self.keep:
                            self._wait_for_interrupt(plane, base_url, ca)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        say(f"\ndone in {time.monotonic() - self.started:.0f}s; everything stopped and removed.")

    # -- processes ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _emulator(self, work: Path) -> Iterator[tuple[str, Path, SyncAdminClient]]:
        child, base_url, ca = start_emulator(work)
        try:
            yield base_url, ca, SyncAdminClient(base_url, ca)
        finally:
            child.stop()

    @contextlib.contextmanager
    def _operator(self, work: Path, plane: ControlPlane, base_url: str, ca: Path) -> Iterator[str]:
        token_file = work / "sa-token"
        token_file.write_text(_service_account_token(plane))
        port = free_port()
        env = {
            "AZURE_JIT_ARM_ENDPOINT": base_url,
            "AZURE_JIT_CA_BUNDLE": str(ca),
            "AZURE_JIT_KUBECONFIG": str(plane.kubeconfig),
            "AZURE_JIT_METRICS_PORT": str(port),
            "AZURE_JIT_CLOSE_GRACE": "10s",
            "AZURE_AUTHORITY_HOST": base_url,
            "AZURE_TENANT_ID": TENANT_ID,
            "AZURE_CLIENT_ID": OPERATOR_CLIENT_ID,
            "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        }
        child = start_operator(work, env=env)
        metrics = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _ready(child, metrics), timeout=60, what="the operator to be ready")
            say(
                "3/6 operator: running, signed in to Azure with Workload Identity "
                f"(client {OPERATOR_CLIENT_ID[:8]}…); metrics at {metrics}/metrics"
            )
            yield metrics
        except Exception:
            say(f"operator log:\n{child.log()[-3000:]}")
            raise
        finally:
            child.stop()

    # -- the story ---------------------------------------------------------------------

    def _scenario(self, plane: ControlPlane, admin: SyncAdminClient, metrics: str) -> None:
        examples = self.repo / "examples"
        kubectl = plane.kubectl
        kubectl("create", "namespace", NAMESPACE, check=True)
        with plane.api_client() as api:
            objects = k8s.CustomObjectsApi(api)

            def status(plural: str, name: str) -> dict[str, Any]:
                body = cast(
                    dict[str, Any],
                    objects.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, name),
                )
                return dict(body.get("status") or {})

            kubectl(
                "apply",
                "-n",
                NAMESPACE,
                "-f",
                str(examples / "jitpolicy-web-admins.yaml"),
                check=True,
            )
            policy = _until(
                lambda: _ready_condition(status("jitpolicies", "web-admins")), "web-admins Ready"
            )
            say(f"4/6 JitPolicy web-admins is Ready: {policy['message']}")
            for rule in _rules(admin, "vm-web-01", "jitDenyRules"):
                say(
                    f"NSG {rule['nsg']}: deny rule {rule['name']} for port(s) {rule['ports']}",
                    indent=4,
                )

            kubectl(
                "apply",
                "-n",
                NAMESPACE,
                "-f",
                str(examples / "jitaccessrequest-ssh-from-cafe.yaml"),
                check=True,
            )
            denied = _until(
                lambda: _phase(status("jitaccessrequests", "ssh-from-cafe"), "Denied"), "a denial"
            )
            say(f"5/6 JitAccessRequest ssh-from-cafe is Denied: {denied['message']}")

            request = yaml.safe_load((examples / "jitaccessrequest-ssh-inc-4711.yaml").read_text())
            short = copy.deepcopy(request)
            short["spec"]["duration"] = DEMO_DURATION
            kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump(short), check=True)
            say(
                "JitAccessRequest ssh-inc-4711 applied "
                f"(its 1h shortened to {DEMO_DURATION} for the demo)",
                indent=4,
            )
            active = _until(
                lambda: _phase(status("jitaccessrequests", "ssh-inc-4711"), "Active"), "Active"
            )
            say(f"is Active: {active['message']}", indent=4)
            for rule in _rules(admin, "vm-web-01", "jitAllowRules"):
                say(
                    f"NSG {rule['nsg']}: allow rule {rule['name']} "
                    f"for port {rule['ports']} from {rule['sources']}",
                    indent=4,
                )
            say(f"metrics: {_metric(metrics, 'azure_jit_open_ports{')}", indent=4)

            say(
                "6/6 waiting for expiry; Azure removes the rule at endTimeUtc, "
                "the operator confirms it on the NSG"
            )
            expires = active["expiresAt"]
            expired = _until(
                lambda: _phase(status("jitaccessrequests", "ssh-inc-4711"), "Expired"),
                "expiry",
                timeout=180,
                tick=lambda left: say(f"… still Active, expires at {expires}", indent=4),
            )
            say(f"is Expired: {expired['message']} (closed at {expired['closedAt']})", indent=4)
            remaining = _rules(admin, "vm-web-01", "jitAllowRules")
            say(f"NSG allow rules left on vm-web-01: {len(remaining)}", indent=4)
            say(
                f"metrics: {_metric(metrics, 'azure_jit_open_ports{')}; "
                f"{_metric(metrics, 'azure_jit_ports_open_past_expiry')}",
                indent=4,
            )
        say("\n$ kubectl get jit -n team-web")
        say(kubectl("get", "jit", "-n", NAMESPACE).stdout.rstrip())
        say("\n$ kubectl get events -n team-web (the audit trail)")
        events = kubectl(
            "get",
            "events",
            "-n",
            NAMESPACE,
            "--sort-by=.lastTimestamp",
            "-o",
            "custom-columns=TYPE:.type,REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message",
        )
        say(events.stdout.rstrip())

    def _wait_for_interrupt(self, plane: ControlPlane, base_url: str, ca: Path) -> None:
        say("\nstill running (Ctrl-C to stop). Try, in another shell of this checkout:")
        say(f"export KUBECONFIG={plane.kubeconfig}", indent=4)
        say(
            f'export PATH="{plane.bin_dir}:$PWD/.venv/bin:$PATH"   # kubectl, kubectl-jit', indent=4
        )
        say("kubectl get jit -A; kubectl jit list -A", indent=4)
        say(f"emulator admin API: {base_url}/_emulator/state (CA {ca})", indent=4)
        say("and Azure's side with the Azure CLI (README: Poke it with az):", indent=4)
        say(f"export REQUESTS_CA_BUNDLE={ca} AZURE_CONFIG_DIR=$(mktemp -d)", indent=4)
        say("az config set core.collect_telemetry=false core.instance_discovery=false", indent=4)
        say(f"az cloud register -n Emulator --endpoint-resource-manager {base_url}", indent=4)
        say("az cloud set -n Emulator", indent=4)
        say(
            f"az login --service-principal -u {OPERATOR_CLIENT_ID} -p emulator-operator-secret "
            f"--tenant {TENANT_ID}",
            indent=4,
        )
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


def _service_account_token(plane: ControlPlane) -> str:
    """What AKS projects into the pod: a token for the operator's ServiceAccount with the
    Entra federation audience, minted here by the local API server."""
    namespace, name = OPERATOR_SA
    with plane.api_client() as api:
        core = k8s.CoreV1Api(api)
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
        core.create_namespaced_service_account(
            namespace, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name=name))
        )
        minted = core.create_namespaced_service_account_token(
            name,
            namespace,
            k8s.AuthenticationV1TokenRequest(
                spec=k8s.V1TokenRequestSpec(
                    audiences=[FEDERATION_AUDIENCE], expiration_seconds=3600
                )
            ),
        )
    if minted.status is None or not minted.status.token:
        raise RuntimeError("the API server returned no ServiceAccount token")
    return str(minted.status.token)


def _ready(child: Child, metrics: str) -> bool:
    if child.process.poll() is not None:
        raise RuntimeError(f"the operator exited:\n{child.log()[-3000:]}")
    try:
        with urllib.request.urlopen(f"{metrics}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _until(
    probe: Callable[[], dict[str, Any] | None],
    what: str,
    *,
    timeout: float = 60,
    tick: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    next_tick = time.monotonic() + 15
    while True:
        found = probe()
        if found:
            return found
        now = time.monotonic()
        if now >= deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")
        if tick is not None and now >= next_tick:
            tick(deadline - now)
            next_tick = now + 15
        time.sleep(0.2)


def _ready_condition(status: dict[str, Any]) -> dict[str, Any] | None:
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
    return ready if ready and ready["status"] == "True" else None


def _phase(status: dict[str, Any], phase: str) -> dict[str, Any] | None:
    return status if status.get("phase") == phase else None


def _rules(admin: SyncAdminClient, vm: str, kind: str) -> list[dict[str, str]]:
    access = admin.vm_access(SUBSCRIPTION, RESOURCE_GROUP, vm)
    found = []
    for guard in access["guards"]:
        for rule in guard[kind]:
            props = rule["properties"]
            ports = props.get("destinationPortRanges") or [props.get("destinationPortRange")]
            sources = props.get("sourceAddressPrefixes") or [props.get("sourceAddressPrefix")]
            found.append(
                {
                    "nsg": guard["networkSecurityGroup"].rsplit("/", 1)[-1],
                    "name": rule["name"],
                    "ports": ",".join(str(p) for p in ports if p),
                    "sources": ",".join(str(s) for s in sources if s),
                }
            )
    return found


def _metric(metrics: str, prefix: str) -> str:
    with urllib.request.urlopen(f"{metrics}/metrics", timeout=5) as response:
        text = response.read().decode()
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return "; ".join(lines) or f"{prefix.rstrip('{')} (no series yet)"
