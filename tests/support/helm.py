"""The Helm chart (deploy/helm/azure-jit-operator) for tests: helm itself, built from its Go
module by hack/helm/build.sh (as hack/kstatus), and `helm template` of the chart as a list of
objects, with the settings the kustomize base hard-codes when a test compares the two.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.controlplane import in_ci
from tests.support.deploy import OPERATOR_NAMESPACE, Manifest
from tests.support.repo import ROOT

CHART = ROOT / "deploy" / "helm" / "azure-jit-operator"
CI_VALUES = CHART / "ci"
HELM_BUILD = ROOT / "hack" / "helm" / "build.sh"
RELEASE = "azure-jit-operator"
# What deploy/base fixes and the chart leaves to its user: the image (the base's placeholder
# registry), the Workload Identity client id (the base's placeholder) and the Namespace object.
AS_THE_KUSTOMIZE_BASE: dict[str, Any] = {
    "image": {"repository": "registry.example.com/platform/azure-jit-operator", "tag": "0.1.0"},
    "azure": {"clientId": "00000000-0000-0000-0000-000000000000"},
    "namespace": {"create": True},
}


class HelmUnavailableError(Exception):
    """No Go toolchain to build hack/helm and nothing built yet."""


def helm_binary() -> Path:
    """Build (or reuse) helm; its path. Raises HelmUnavailableError without Go."""
    built = subprocess.run(
        [str(HELM_BUILD)], capture_output=True, text=True, check=False, timeout=1200
    )
    if built.returncode != 0:
        if shutil.which("go") is None:
            raise HelmUnavailableError(
                "hack/helm is not built and no Go toolchain is on PATH; install Go >= 1.26"
            )
        raise RuntimeError(f"{HELM_BUILD} failed:\n{built.stderr[-3000:]}")
    return Path(built.stdout.strip().splitlines()[-1])


def helm_or_skip() -> Path:
    """helm for a test: skipped locally without Go, a failure under CI=true (as the control
    plane is)."""
    try:
        return helm_binary()
    except HelmUnavailableError as exc:
        if in_ci():
            pytest.fail(f"{exc} [CI=true: a missing helm is a failure]", pytrace=False)
        pytest.skip(str(exc))


def run_helm(helm: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=60, input=input
    )


def template_args(
    *,
    values_files: Sequence[Path] = (),
    values: Mapping[str, Any] | None = None,
    namespace: str = OPERATOR_NAMESPACE,
    include_crds: bool = False,
) -> list[str]:
    """`helm template` arguments; ``values`` goes in as YAML on stdin (after the files), so
    types are YAML's, not --set's guesses."""
    args = ["template", RELEASE, str(CHART), f"--namespace={namespace}"]
    args += [f"--values={path}" for path in values_files]
    if values is not None:
        args.append("--values=-")
    if include_crds:
        args.append("--include-crds")
    return args


def template(
    helm: Path,
    *,
    values_files: Sequence[Path] = (),
    values: Mapping[str, Any] | None = None,
    namespace: str = OPERATOR_NAMESPACE,
    include_crds: bool = False,
) -> list[Manifest]:
    """`helm template` of the chart as a list of objects; fails with helm's message."""
    args = template_args(
        values_files=values_files, values=values, namespace=namespace, include_crds=include_crds
    )
    rendered = run_helm(helm, *args, input=None if values is None else yaml.safe_dump(dict(values)))
    assert rendered.returncode == 0, f"helm {' '.join(args)} failed:\n{rendered.stderr}"
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
