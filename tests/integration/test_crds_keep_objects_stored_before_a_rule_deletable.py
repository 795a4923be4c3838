"""Objects stored before the CRDs refused IPv6 sources (E14) and policy + VM names longer than
56 characters (E13) stay workable after the CRDs are upgraded: labels and the removal of the
operator's finalizer still pass, so they can be deleted; a change of the spec is judged.

The old and new CRDs are installed under a group of their own, so the real CRDs of the
shared control plane are left alone."""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from azure_jit_operator.domain.azure_limits import name_limit_violations
from tests.support.controlplane import ControlPlane, wait_for
from tests.support.repo import crd

GROUP, VERSION = "grandfathered.example.com", "v1alpha1"
FINALIZER = "azurejit.dev/cleanup"
LONG_VM = "vm-" + "w" * 50  # with "web-admins": 63 characters
KINDS = {"jitpolicies": "OldJitPolicy", "jitaccessrequests": "OldJitAccessRequest"}


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _crd(plural: str, *, new_rules: bool) -> dict[str, Any]:
    """The repository's CRD under GROUP; without ``new_rules`` as it was before E13/E14."""
    document = copy.deepcopy(crd(plural))
    kind = KINDS[plural]
    document["metadata"]["name"] = f"old{plural}.{GROUP}"
    document["spec"]["group"] = GROUP
    document["spec"]["names"] = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": f"old{plural}",
        "singular": kind.lower(),
    }
    if not new_rules:
        for node in _walk(document["spec"]["versions"][0]["schema"]):
            rules = node.get("x-kubernetes-validations")
            if rules:
                node["x-kubernetes-validations"] = [
                    r for r in rules if r["rule"] != "!self.contains(':')" and "56" not in r["rule"]
                ]
    return document


def _apply(control_plane: ControlPlane, documents: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "crds.json"
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}))
        applied = control_plane.kubectl("apply", "--server-side", "-f", str(path))
    assert applied.returncode == 0, applied.stderr


def _policy(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OldJitPolicy",
        "metadata": {"name": name, "finalizers": [FINALIZER]},
        "spec": {
            "azure": {
                "subscriptionId": "00000000-0000-0000-0000-000000000000",
                "resourceGroup": "rg-web",
                "location": "westeurope",
            },
            "virtualMachines": [
                {
                    "name": LONG_VM,
                    "ports": [
                        {
                            "number": 22,
                            "allowedSourceAddressPrefixes": ["2001:db8::/48"],
                            "maxRequestAccessDuration": "3h",
                        }
                    ],
                }
            ],
        },
    }


def _request(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OldJitAccessRequest",
        "metadata": {"name": name, "finalizers": [FINALIZER]},
        "spec": {
            "policyName": "web-admins",
            "virtualMachine": "vm-web-01",
            "ports": [{"number": 22, "sourceAddressPrefix": "2001:db8::7"}],
            "duration": "1h",
            "justification": "INC-4711",
        },
    }


@pytest.fixture
def api(control_plane: ControlPlane) -> Iterator[k8s.CustomObjectsApi]:
    with control_plane.api_client() as client:
        yield k8s.CustomObjectsApi(client)


@pytest.fixture
def old_crds(control_plane: ControlPlane) -> Iterator[None]:
    _apply(control_plane, [_crd(plural, new_rules=False) for plural in KINDS])
    yield
    for plural in KINDS:
        control_plane.kubectl("delete", "crd", f"old{plural}.{GROUP}", "--wait=false")


def _refused(api: k8s.CustomObjectsApi, namespace: str, plural: str, body: Any) -> bool:
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body, dry_run="All")
    except k8s.ApiException as exc:
        return int(exc.status or 0) == 422
    return False


def _stored(api: k8s.CustomObjectsApi, namespace: str, plural: str, body: Any) -> None:
    """Create ``body`` once the (old) CRD serves it."""

    def created() -> bool:
        try:
            api.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
        except k8s.ApiException as exc:
            if exc.status == 404:  # the new resource is not served yet
                return False
            raise
        return True

    wait_for(created, timeout=30, what=f"{plural} served")


def _gone(api: k8s.CustomObjectsApi, namespace: str, plural: str, name: str) -> bool:
    try:
        api.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    except k8s.ApiException as exc:
        return int(exc.status or 0) == 404
    return False


def test_objects_stored_before_the_new_rules_can_be_labelled_and_deleted_but_not_changed(
    control_plane: ControlPlane, api: k8s.CustomObjectsApi, namespace: str, old_crds: None
) -> None:
    _stored(api, namespace, "oldjitpolicies", _policy("web-admins"))
    _stored(api, namespace, "oldjitaccessrequests", _request("ssh-inc-4711"))

    _apply(control_plane, [_crd(plural, new_rules=True) for plural in KINDS])
    wait_for(
        lambda: (
            _refused(api, namespace, "oldjitpolicies", _policy("probe"))
            and _refused(api, namespace, "oldjitaccessrequests", _request("probe"))
        ),
        timeout=30,
        what="the new rules in force",
    )

    with pytest.raises(k8s.ApiException) as refused:
        api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "oldjitpolicies",
            "web-admins",
            {"spec": {"deletionPolicy": "Orphan"}},
        )
    assert refused.value.status == 422
    assert (
        name_limit_violations("web-admins", [LONG_VM])[0]
        in json.loads(refused.value.body or "{}")["message"]
    )

    for plural, name in [
        ("oldjitpolicies", "web-admins"),
        ("oldjitaccessrequests", "ssh-inc-4711"),
    ]:
        api.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, {"metadata": {"labels": {"team": "web"}}}
        )
        api.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        api.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, {"metadata": {"finalizers": None}}
        )
        assert _gone(api, namespace, plural, name)
