"""Every CRD in crds/ is accepted by a real API server, served, discoverable by its short names
and category, and documented for `kubectl explain`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.controlplane import CRD_DIR, ControlPlane

CRD_FILES = sorted(CRD_DIR.glob("*.yaml"))


def _crd(path: Path) -> dict[str, Any]:
    with path.open() as stream:
        crd: dict[str, Any] = yaml.safe_load(stream)
    return crd


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_the_repository_ships_every_crd() -> None:
    assert {_crd(path)["spec"]["names"]["kind"] for path in CRD_FILES} == {
        "JitPolicy",
        "JitAccessRequest",
        "JitAccessSchedule",
    }


@pytest.mark.parametrize("path", CRD_FILES, ids=[path.name for path in CRD_FILES])
def test_crd_is_established_with_accepted_names(control_plane: ControlPlane, path: Path) -> None:
    name = _crd(path)["metadata"]["name"]

    result = control_plane.kubectl("get", "crd", name, "-o", "json", check=True)

    conditions = {c["type"]: c for c in json.loads(result.stdout)["status"]["conditions"]}
    assert conditions["Established"]["status"] == "True"
    assert conditions["NamesAccepted"]["status"] == "True", conditions["NamesAccepted"]


def test_short_names_and_the_jit_category_are_discoverable(control_plane: ControlPlane) -> None:
    result = control_plane.kubectl(
        "api-resources", "--api-group=azurejit.dev", "-o", "wide", check=True
    )

    header, *lines = result.stdout.splitlines()
    assert header.split()[:5] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert header.split()[-1] == "CATEGORIES"
    rows = {(*line.split()[:5], line.split()[-1]) for line in lines}
    assert rows == {
        ("jitaccessrequests", "jitreq", "azurejit.dev/v1alpha1", "true", "JitAccessRequest", "jit"),
        ("jitpolicies", "jitpol", "azurejit.dev/v1alpha1", "true", "JitPolicy", "jit"),
        (
            "jitaccessschedules",
            "jitsched",
            "azurejit.dev/v1alpha1",
            "true",
            "JitAccessSchedule",
            "jit",
        ),
    }


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("JitPolicy", "spec"),
        ("JitPolicy", "spec.virtualMachines.ports"),
        ("JitAccessRequest", "spec"),
        ("JitAccessSchedule", "spec"),
        ("JitAccessSchedule", "spec.requestTemplate.ports"),
    ],
    ids=[
        "kubectl explain jitpolicy.spec shows every field with its description",
        "kubectl explain reaches the nested port fields of a policy",
        "kubectl explain jitaccessrequest.spec shows every field with its description",
        "kubectl explain jitaccessschedule.spec shows every field with its description",
        "kubectl explain reaches the template's port fields of a schedule",
    ],
)
def test_kubectl_explain_shows_the_crd_descriptions(
    control_plane: ControlPlane, kind: str, field: str
) -> None:
    crd = next(_crd(p) for p in CRD_FILES if _crd(p)["spec"]["names"]["kind"] == kind)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for step in field.split("."):
        schema = schema["properties"][step]
        if schema.get("type") == "array":
            schema = schema["items"]

    result = control_plane.kubectl("explain", f"{kind.lower()}.{field}", check=True)

    explained = _words(result.stdout)
    assert f"KIND: {kind}" in explained
    assert _words(schema["description"]) in explained
    for name, prop in schema["properties"].items():
        assert name in explained
        assert _words(prop["description"]) in explained, f"{name}: description missing"
