"""deploy/components for tests: an overlay combined with components the way a user's
kustomization adds them, rendered with the project's kubectl, installed as docs/install.md says
(cert-manager's kinds left out: no cert-manager runs here), and what the webhook configurations
should be according to the operator's own kopf handlers.
"""

from __future__ import annotations

import base64
import copy
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import kopf
import yaml

# kopf's managed mode builds the webhooks with this function: the least brittle way to know
# what kopf expects is to ask it.
from kopf._core.engines.admission import build_webhooks

from azure_jit_operator.clock import Clock
from azure_jit_operator.config import Settings
from azure_jit_operator.handlers import build_registry
from azure_jit_operator.tls import ensure_tls_files
from tests.support.controlplane import ControlPlane
from tests.support.deploy import (
    DEPLOY,
    OVERLAYS,
    Manifest,
    apply_server_side,
    install,
    render,
)

COMPONENTS = DEPLOY / "components"
PRODUCTION = DEPLOY / "overlays" / "production"
CERT_MANAGER_GROUP = "cert-manager.io"
WEBHOOK_CONFIGURATION_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
WEBHOOK_CONFIGURATION_NAME = "azurejit.dev"  # kopf's managed mode names them like this
WEBHOOK_SERVICE = "azure-jit-operator-webhook"
JIT_REQUESTS = kopf.Resource("azurejit.dev", "v1alpha1", "jitaccessrequests", namespaced=True)
JIT_SCHEDULES = kopf.Resource("azurejit.dev", "v1alpha1", "jitaccessschedules", namespaced=True)


def compose(work_dir: Path, overlay: str | Path, components: Sequence[str] = ()) -> Path:
    """A kustomization in ``work_dir`` that adds ``components`` to ``overlay`` (a name from
    tests.support.deploy.OVERLAYS or a directory), as a user's own kustomization would."""
    base = OVERLAYS[overlay] if isinstance(overlay, str) else overlay
    work_dir.mkdir(parents=True, exist_ok=True)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize takes relative paths only.
        "resources": [os.path.relpath(base, work_dir)],
        "components": [os.path.relpath(COMPONENTS / c, work_dir) for c in components],
    }
    (work_dir / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return work_dir


def render_composed(
    control_plane: ControlPlane,
    work_dir: Path,
    overlay: str | Path,
    components: Sequence[str] = (),
) -> list[Manifest]:
    return render(control_plane, compose(work_dir, overlay, components))


def is_cert_manager(obj: Manifest) -> bool:
    return str(obj["apiVersion"]).split("/")[0] == CERT_MANAGER_GROUP


def without_cert_manager(objects: Iterable[Manifest]) -> list[Manifest]:
    return [o for o in objects if not is_cert_manager(o)]


def install_composed(
    control_plane: ControlPlane, overlay: str, objects: list[Manifest]
) -> list[Manifest]:
    """docs/install.md's steps for an overlay with components on a fresh cluster: the CRDs
    first (until Established), then every rendered object but cert-manager's kinds, whose CRDs
    no cluster here has. Returns what was applied."""
    install(control_plane, overlay)  # CRDs, then the plain overlay
    applied = without_cert_manager(objects)
    apply_server_side(control_plane, applied)
    return applied


def kinds(objects: Iterable[Manifest], *wanted: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] in wanted]


# --------------------------------------------------------------------------- webhooks


def operator_webhooks(*, client_config: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The webhooks kopf would configure for the operator's admission handlers, by kind of
    configuration: kopf's own ``build_webhooks`` (what its managed mode writes) over the
    handlers ``build_registry`` registers when webhooks are on."""
    registry = build_registry(
        Settings(webhooks="external", webhook_cert_dir=Path("/x")),
        clock=Clock(),
        credential_factory=lambda _settings: None,
    )
    # kopf has no public accessor for the registered webhook handlers.
    handlers = registry._webhooks.get_all_handlers()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for kind, reason in zip(WEBHOOK_CONFIGURATION_KINDS, ("mutating", "validating"), strict=True):
        by_kind[kind] = build_webhooks(
            [h for h in handlers if str(h.reason) == reason],
            resources=[JIT_REQUESTS, JIT_SCHEDULES],
            name_suffix=WEBHOOK_CONFIGURATION_NAME,
            client_config=copy.deepcopy(client_config),  # type: ignore[arg-type]
        )
    return by_kind


# What a webhook means to the API server: everything but how to reach it and how long to wait.
SEMANTIC_FIELDS = ("name", "rules", "failurePolicy", "sideEffects", "matchPolicy")


def semantics(webhook: dict[str, Any]) -> dict[str, Any]:
    """A webhook's meaning plus the path it calls (``/<handler id>``), defaults filled in as
    the API server fills them, so static, rendered and live configurations compare."""
    got = {k: copy.deepcopy(webhook.get(k)) for k in SEMANTIC_FIELDS}
    got["matchPolicy"] = got["matchPolicy"] or "Equivalent"
    for rule in got["rules"] or []:
        rule.setdefault("scope", "*")
    config = webhook.get("clientConfig") or {}
    if "service" in config:
        got["path"] = config["service"].get("path")
    else:
        got["path"] = "/" + str(config.get("url", "")).split("/", 3)[-1]
    selector = webhook.get("objectSelector") or {}
    got["objectSelector"] = selector or None
    return got


# --------------------------------------------------------------------------- external mode


def issue_webhook_certificate(directory: Path, *, hosts: Sequence[str]) -> Path:
    """What cert-manager's Certificate puts into the operator's Secret volume: ``tls.crt``,
    ``tls.key`` and ``ca.crt`` (the CA that the caBundle carries). Returns the directory."""
    made = ensure_tls_files(directory / "ca", hosts=hosts, name="azure-jit-operator webhook")
    shutil.copyfile(made.server, directory / "tls.crt")
    shutil.copyfile(made.server_key, directory / "tls.key")
    shutil.copyfile(made.ca, directory / "ca.crt")
    return directory


def reachable_from_here(configuration: Manifest, *, base_url: str, ca_file: Path) -> Manifest:
    """A static configuration as the API server here can use it: what cert-manager's cainjector
    does (caBundle from the CA), and the Service reference replaced by the operator's loopback
    URL with the same path (no Service routing without kube-proxy)."""
    reachable = copy.deepcopy(configuration)
    bundle = base64.b64encode(ca_file.read_bytes()).decode("ascii")
    for webhook in reachable["webhooks"]:
        service = webhook["clientConfig"].pop("service")
        webhook["clientConfig"]["url"] = base_url.rstrip("/") + service["path"]
        webhook["clientConfig"]["caBundle"] = bundle
    return reachable


def live_webhook_configurations(control_plane: ControlPlane) -> dict[str, Manifest]:
    """The Mutating/ValidatingWebhookConfigurations ``azurejit.dev`` by kind (absent: left out)."""
    found: dict[str, Manifest] = {}
    for kind in WEBHOOK_CONFIGURATION_KINDS:
        got = control_plane.kubectl(
            "get", kind.lower(), WEBHOOK_CONFIGURATION_NAME, "--output=yaml"
        )
        if got.returncode == 0:
            found[kind] = yaml.safe_load(got.stdout)
    return found


def delete_webhook_configurations(control_plane: ControlPlane) -> None:
    """What docs/install.md says to run after removing a managed-mode install."""
    for kind in WEBHOOK_CONFIGURATION_KINDS:
        control_plane.kubectl(
            "delete", kind.lower(), WEBHOOK_CONFIGURATION_NAME, "--ignore-not-found", check=True
        )
