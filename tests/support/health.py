"""Health as GitOps tools judge it: Argo CD's Lua health checks (deploy/gitops/argocd/health/,
run by a real Lua 5.1 interpreter through lupa, as Argo CD's gopher-lua is 5.1) and Flux's
kstatus (the real sigs.k8s.io/cli-utils library, in hack/kstatus/, built like hack/envtest).

Sample objects for both, built by the operator's own domain code (the status a request or
policy gets in each phase), live here too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lupa import lua51

from azure_jit_operator.domain.conditions import FALSE, TRUE, Condition, set_condition
from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.domain.request_status import RequestStatus, enter
from tests.support.manifests import policy_manifest, request_manifest
from tests.support.repo import ROOT

ARGOCD_HEALTH = ROOT / "deploy" / "gitops" / "argocd" / "health"
KSTATUS_BUILD = ROOT / "hack" / "kstatus" / "build.sh"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- Argo CD


def argo_health(obj: Mapping[str, Any]) -> dict[str, str]:
    """What Argo CD's health check for ``obj``'s kind returns: {status, message}."""
    group = str(obj["apiVersion"]).split("/")[0]
    script = (ARGOCD_HEALTH / f"{group}_{obj['kind']}.lua").read_text(encoding="utf-8")
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True, register_eval=False)
    runtime.globals().obj = _to_lua(runtime, obj)
    # Argo CD runs the script as a chunk whose return value is the health table.
    result = runtime.execute(script)
    return {str(k): str(v) for k, v in dict(result).items()}


def _to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, Mapping):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


# --------------------------------------------------------------------------- kstatus


class KstatusUnavailableError(Exception):
    """No Go toolchain to build hack/kstatus and nothing built yet."""


def kstatus_binary() -> Path:
    """Build (or reuse) hack/kstatus; its path. Raises KstatusUnavailableError without Go."""
    built = subprocess.run(
        [str(KSTATUS_BUILD)], capture_output=True, text=True, check=False, timeout=900
    )
    if built.returncode != 0:
        if shutil.which("go") is None:
            raise KstatusUnavailableError(
                "hack/kstatus is not built and no Go toolchain is on PATH; install Go >= 1.26"
            )
        raise RuntimeError(f"{KSTATUS_BUILD} failed:\n{built.stderr[-3000:]}")
    return Path(built.stdout.strip().splitlines()[-1])


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def kstatus(binary: Path, objects: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """kstatus' computed status of each object: [{kind, name, status, message}]."""
    ran = subprocess.run(
        [str(binary)],
        input=json.dumps(list(objects)),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert ran.returncode == 0, ran.stderr
    return [json.loads(line) for line in ran.stdout.splitlines()]


# --------------------------------------------------------------------------- samples


def _with_meta(manifest: dict[str, Any], *, generation: int) -> dict[str, Any]:
    manifest["metadata"].update(
        namespace="team-web",
        generation=generation,
        uid="6f1c0a4e-0000-4000-8000-000000000001",
        creationTimestamp="2026-11-23T11:00:00Z",
    )
    return manifest


def request_in(phase: Phase, *, reason: str, message: str) -> dict[str, Any]:
    """A JitAccessRequest whose status the domain's state machine produced for ``phase``."""
    status = RequestStatus()
    path = {
        Phase.PENDING: [Phase.PENDING],
        Phase.ACTIVE: [Phase.PENDING, Phase.ACTIVE],
        Phase.EXPIRED: [Phase.PENDING, Phase.ACTIVE, Phase.EXPIRED],
        Phase.REVOKED: [Phase.PENDING, Phase.ACTIVE, Phase.REVOKED],
        Phase.DENIED: [Phase.PENDING, Phase.DENIED],
        Phase.FAILED: [Phase.PENDING, Phase.FAILED],
    }[phase]
    for step, moment in zip(path, range(len(path)), strict=True):
        changes: dict[str, Any] = {}
        if step is Phase.ACTIVE:
            changes = {"start_time": NOW, "expires_at": NOW + timedelta(hours=1)}
        if step in (Phase.EXPIRED, Phase.REVOKED):
            changes = {"closed_at": NOW + timedelta(hours=1)}
        last = step is phase
        status = enter(
            status,
            step,
            reason=reason if last else "Validating",
            message=message if last else "checking the request against its policy",
            now=NOW + timedelta(minutes=moment),
            **changes,
        ).status
    body = _with_meta(request_manifest("ssh-inc-4711"), generation=1)
    body["status"] = status.to_dict(generation=1)
    return body


def policy_with(
    *conditions: tuple[str, str, str, str], generation: int = 1, observed: int | None = None
) -> dict[str, Any]:
    """A JitPolicy with conditions (type, status, reason, message) as the operator writes them:
    Ready carries the observed generation, the status its observedGeneration."""
    seen = generation if observed is None else observed
    current: tuple[Condition, ...] = ()
    for type_, state, reason, message in conditions:
        current, _ = set_condition(
            current,
            Condition(
                type_,
                state,
                reason,
                message,
                observed_generation=seen if type_ == "Ready" else None,
            ),
            now=NOW,
        )
    body = _with_meta(policy_manifest("web-admins"), generation=generation)
    body["status"] = {
        "observedGeneration": seen,
        "conditions": [c.to_dict() for c in current],
    }
    return body


READY = ("Ready", TRUE, "Synced", "Azure JIT policy matches the spec (1 VM(s), 1 port(s))")
NOT_READY_STALLED = ("Ready", FALSE, "AzureForbidden", "Azure refused the policy: 403")
STALLED = ("Stalled", TRUE, "AzureForbidden", "Azure refused the policy: 403")
NOT_READY_RECONCILING = ("Ready", FALSE, "AzureUnavailable", "Azure is throttling; retrying")
RECONCILING = ("Reconciling", TRUE, "AzureUnavailable", "Azure is throttling; retrying")
