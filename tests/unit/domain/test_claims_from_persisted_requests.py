"""Who holds which VM port, rebuilt from JitAccessRequests as the API lists them: only Active
requests with their Azure record hold ports, per VM whatever the case of its id."""

from datetime import UTC, datetime
from typing import Any

from azure_jit_operator.domain.grants import Claim, RequestRef
from azure_jit_operator.domain.request_status import active_claims, claims_by_vm

VM = "/subscriptions/sub/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/vm-01"
OTHER_VM = VM.replace("vm-01", "vm-02")
EXPIRES = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


def listed(
    name: str,
    phase: str | None,
    *,
    vm_id: str = VM,
    ports: tuple[tuple[int, str], ...] = ((22, "198.51.100.7/32"),),
    expires: str | None = "2026-11-23T11:00:00Z",
    namespace: str = "team-web",
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "ports": [{"number": n, "sourceAddressPrefix": p, "state": "Open"} for n, p in ports],
        "azure": {"virtualMachineId": vm_id or None, "policyId": "/p", "initiationId": "abc"},
        "expiresAt": expires,
    }
    if phase is not None:
        status["phase"] = phase
    return {
        "apiVersion": "azurejit.dev/v1alpha1",
        "kind": "JitAccessRequest",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": {"policyName": "web-admins"},
        "status": status,
    }


def ref(name: str, namespace: str = "team-web") -> RequestRef:
    return RequestRef(namespace, name, f"uid-{name}")


def test_an_active_request_claims_each_of_its_ports_until_its_expiry() -> None:
    claims = claims_by_vm(
        [listed("alice", "Active", ports=((22, "198.51.100.7/32"), (3389, "198.51.100.7/32")))]
    )
    assert claims == {
        VM.lower(): [
            Claim(ref("alice"), 22, "198.51.100.7/32", EXPIRES),
            Claim(ref("alice"), 3389, "198.51.100.7/32", EXPIRES),
        ]
    }


def test_requests_on_one_vm_are_gathered_whatever_the_case_of_its_id() -> None:
    claims = claims_by_vm(
        [
            listed("alice", "Active"),
            listed("bob", "Active", vm_id=VM.upper(), namespace="team-db"),
            listed("carol", "Active", vm_id=OTHER_VM),
        ]
    )
    assert sorted(claims) == sorted([VM.lower(), OTHER_VM.lower()])
    assert [c.request for c in claims[VM.lower()]] == [ref("alice"), ref("bob", "team-db")]
    assert [c.request for c in claims[OTHER_VM.lower()]] == [ref("carol")]


def test_only_active_requests_hold_ports() -> None:
    objects = [
        listed(name, phase)
        for name, phase in [
            ("pending", "Pending"),  # even with an intent recorded: not open yet
            ("expired", "Expired"),
            ("revoked", "Revoked"),
            ("denied", "Denied"),
            ("failed", "Failed"),
            ("new", None),
        ]
    ]
    objects.append({"metadata": {"name": "no-status", "namespace": "team-web", "uid": "u"}})
    assert claims_by_vm(objects) == {}


def test_an_active_status_without_its_azure_record_holds_nothing() -> None:
    # The worker refuses to guess what such a request opened (it ends it as StatusIncomplete).
    assert claims_by_vm([listed("no-vm", "Active", vm_id="")]) == {}
    assert claims_by_vm([listed("no-expiry", "Active", expires=None)]) == {}


def test_one_status_gives_its_vm_and_claims() -> None:
    obj = listed("alice", "Active", vm_id=VM.upper())
    assert active_claims(ref("alice"), obj["status"]) == (
        VM.lower(),
        (Claim(ref("alice"), 22, "198.51.100.7/32", EXPIRES),),
    )
    assert active_claims(ref("alice"), None) is None
