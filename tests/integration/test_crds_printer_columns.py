"""`kubectl get jit` (the category) shows every kind with their printer columns, filled from
spec and from the status the operator writes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from kubernetes import client as k8s

from tests.support.controlplane import REPO_ROOT, ControlPlane

GROUP, VERSION = "azurejit.dev", "v1alpha1"


def _table(output: str, kind: str) -> list[dict[str, str]]:
    """Rows of the table whose NAME column starts with ``<kind>.azurejit.dev/``."""
    tables = [t for t in output.strip().split("\n\n") if f"{kind}.{GROUP}/" in t]
    assert len(tables) == 1, output
    header, *lines = tables[0].splitlines()
    found = list(re.finditer(r"\S+", header))
    columns = [match.group() for match in found]
    starts = [match.start() for match in found]
    ends = [*starts[1:], None]
    return [
        {
            col: line[start:end].strip()
            for col, start, end in zip(columns, starts, ends, strict=True)
        }
        for line in lines
    ]


@pytest.fixture
def examples_with_status(control_plane: ControlPlane, namespace: str) -> str:
    """The examples applied, with a status as the operator would write it."""
    control_plane.kubectl(
        "apply", "--server-side", "-n", namespace, "-f", str(REPO_ROOT / "examples"), check=True
    )
    policy_status: dict[str, Any] = {
        "status": {
            "observedGeneration": 1,
            "virtualMachineCount": 2,
            "azurePolicyId": "/subscriptions/0/resourceGroups/rg-web/providers/"
            "Microsoft.Security/locations/westeurope/jitNetworkAccessPolicies/web-admins",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Synced",
                    "message": "Azure policy matches the spec",
                    "lastTransitionTime": "2030-01-01T10:00:00Z",
                }
            ],
        }
    }
    request_status: dict[str, Any] = {
        "status": {
            "phase": "Active",
            "startTime": "2030-01-01T10:00:00Z",
            "expiresAt": "2030-01-01T11:00:00Z",
            "message": "port 22 open from 198.51.100.7/32",
        }
    }
    with control_plane.api_client() as api:
        objects = k8s.CustomObjectsApi(api)
        objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "jitpolicies", "web-admins", policy_status
        )
        objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "jitaccessrequests", "ssh-inc-4711", request_status
        )
    return namespace


def test_kubectl_get_jit_lists_policies_and_requests_with_their_columns(
    control_plane: ControlPlane, examples_with_status: str
) -> None:
    result = control_plane.kubectl("get", "jit", "-n", examples_with_status, check=True)

    policies = {p["NAME"].rsplit("/", 1)[1]: p for p in _table(result.stdout, "jitpolicy")}
    assert list(policies["web-admins"]) == ["NAME", "READY", "VMS", "EXPOSED", "AGE"]
    assert (policies["web-admins"]["READY"], policies["web-admins"]["VMS"]) == ("True", "2")
    assert all(p["READY"] == "" for name, p in policies.items() if name != "web-admins")

    requests = _table(result.stdout, "jitaccessrequest")
    assert list(requests[0]) == ["NAME", "POLICY", "VM", "PORTS", "PHASE", "EXPIRES", "AGE"]
    by_name = {r["NAME"].rsplit("/", 1)[1]: r for r in requests}
    active = by_name["ssh-inc-4711"]
    assert [active[c] for c in ("POLICY", "VM", "PORTS", "PHASE", "EXPIRES")] == [
        "web-admins",
        "vm-web-01",
        "22",
        "Active",
        "2030-01-01T11:00:00Z",
    ]
    assert by_name["ssh-from-cafe"]["PHASE"] == ""  # no status yet: the operator has not run


def test_wide_output_adds_the_reason_policy_id_and_message_columns(
    control_plane: ControlPlane, examples_with_status: str
) -> None:
    result = control_plane.kubectl("get", "jit", "-n", examples_with_status, "-o", "wide")

    assert result.returncode == 0, result.stderr
    policy = {p["NAME"]: p for p in _table(result.stdout, "jitpolicy")}[
        "jitpolicy.azurejit.dev/web-admins"
    ]
    assert list(policy) == ["NAME", "READY", "REASON", "VMS", "EXPOSED", "AZURE-POLICY", "AGE"]
    assert policy["REASON"] == "Synced"
    assert policy["AZURE-POLICY"].endswith("/jitNetworkAccessPolicies/web-admins")
    request = {r["NAME"]: r for r in _table(result.stdout, "jitaccessrequest")}
    assert request["jitaccessrequest.azurejit.dev/ssh-inc-4711"]["MESSAGE"] == (
        "port 22 open from 198.51.100.7/32"
    )


@pytest.mark.parametrize(
    ("resource", "kind"),
    [("jitpol", "JitPolicy"), ("jitreq", "JitAccessRequest"), ("jitsched", "JitAccessSchedule")],
    ids=[
        "jitpol is short for jitpolicies",
        "jitreq is short for jitaccessrequests",
        "jitsched is short for jitaccessschedules",
    ],
)
def test_short_names_work_with_kubectl_get(
    control_plane: ControlPlane, examples_with_status: str, resource: str, kind: str
) -> None:
    result = control_plane.kubectl(
        "get", resource, "-n", examples_with_status, "-o", "jsonpath={.items[*].kind}", check=True
    )
    assert set(result.stdout.split()) == {kind}


def test_kubectl_get_jit_shows_when_a_schedules_windows_start(
    control_plane: ControlPlane, examples_with_status: str
) -> None:
    schedule_status: dict[str, Any] = {
        "status": {
            "observedGeneration": 1,
            "lastScheduleTime": "2030-01-01T08:00:00Z",
            "nextScheduleTime": "2030-01-02T08:00:00Z",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Scheduling",
                    "message": "windows open on schedule",
                    "lastTransitionTime": "2030-01-01T08:00:00Z",
                }
            ],
        }
    }
    with control_plane.api_client() as api:
        k8s.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            examples_with_status,
            "jitaccessschedules",
            "weekday-maintenance",
            schedule_status,
        )
    result = control_plane.kubectl(
        "get", "jit", "-n", examples_with_status, "-o", "wide", check=True
    )
    schedule = {r["NAME"].rsplit("/", 1)[1]: r for r in _table(result.stdout, "jitaccessschedule")}[
        "weekday-maintenance"
    ]
    assert list(schedule) == [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "DURATION",
        "SUSPEND",
        "READY",
        "LAST",
        "NEXT",
        "VM",
        "MESSAGE",
        "AGE",
    ]
    assert [schedule[c] for c in ("SCHEDULE", "TIMEZONE", "DURATION", "READY", "NEXT", "VM")] == [
        "0 9 * * 1-5",
        "Europe/Berlin",
        "1h",
        "True",
        "2030-01-02T08:00:00Z",
        "vm-web-01",
    ]
    assert schedule["MESSAGE"] == "windows open on schedule"
