"""The operator's logs are JSON lines that name the Kubernetes object and carry Azure's
request ids for every write, and never contain a token or a secret."""

import json
from pathlib import Path

from tests.support.audit import schema_errors
from tests.support.controlplane import ControlPlane
from tests.support.emulator import EmulatorEndpoint
from tests.support.identity import OPERATOR
from tests.support.manifests import policy_manifest, request_manifest
from tests.support.operator import JitWorld, start_operator_process


def test_a_lifecycle_leaves_a_structured_audit_trail_without_secrets(
    control_plane: ControlPlane, emulator_endpoint: EmulatorEndpoint, namespace: str, tmp_path: Path
) -> None:
    admin = emulator_endpoint.sync_admin()
    admin.reset()
    operator = start_operator_process(
        tmp_path, control_plane=control_plane, emulator=emulator_endpoint, namespace=namespace
    )
    try:
        with control_plane.api_client() as api:
            jit = JitWorld(control_plane, emulator_endpoint, admin, namespace, None, api)
            jit.apply(policy_manifest())
            jit.wait_policy_ready("web-admins")
            jit.apply(request_manifest("ssh", duration="30m"))
            jit.wait_phase("ssh", "Active")
            jit.delete("JitAccessRequest", "ssh")
            jit.wait_gone("JitAccessRequest", "ssh")
    finally:
        operator.stop()

    text = operator.log()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert records, "the operator logged nothing"

    about_request = [
        r
        for r in records
        if (r.get("k8s") or {}).get("name") == "ssh" or r.get("k8s_name") == "ssh"
    ]
    assert about_request, "no log record names the request"
    assert all(
        (r.get("k8s") or {}).get("namespace", r.get("k8s_namespace")) == namespace
        for r in about_request
    )

    writes = [
        r
        for r in records
        if r.get("azure_operation") in ("JitNetworkAccessPolicies_Initiate", "SecurityRules_Delete")
        and r.get("azure_request_id")
    ]
    assert {r["azure_operation"] for r in writes} == {
        "JitNetworkAccessPolicies_Initiate",
        "SecurityRules_Delete",
    }

    # The audit logger's lines are bare records of docs/audit/audit-record-v1.schema.json.
    audit = [r for r in records if r.get("schemaVersion") == "azurejit.dev/audit/v1"]
    assert [r["action"] for r in audit if r["object"]["name"] == "ssh"] == [
        "requested",
        "opened",
        "revoked",
    ]
    assert all(schema_errors(r) == [] for r in audit)

    token_file = (tmp_path / "sa-token").read_text()
    for secret in (token_file, "Bearer ", "eyJ", OPERATOR.secret, "client_assertion"):
        assert secret not in text, f"the log contains {secret[:12]!r}..."
