"""The requests behind the admin clients' methods, shared by the async and the sync client.

Each method of :class:`~.admin_client.AdminClient` and :class:`~.admin_client.SyncAdminClient`
is one :class:`Call` (method, path below ``/_emulator``, JSON body) built here, so the two
clients cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

DEFAULT_TENANT_ID = "cccccccc-cccc-cccc-cccc-cccccccccccc"  # the default world's tenant


@dataclass(frozen=True, slots=True)
class Call:
    """One admin request: method, path below ``/_emulator`` and JSON body."""

    method: str
    path: str
    body: dict[str, Any] | None = None


def fault_spec(
    operation: str,
    *,
    kind: str,
    times: int | None,
    method: str | None,
    status: int | None,
    retry_after: int | None,
    latency_seconds: float | None,
    phase: str,
    code: str | None,
    message: str | None,
    subscription: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"operation": operation, "kind": kind, "times": times, "phase": phase}
    for key, value in (
        ("subscription", subscription),
        ("method", method),
        ("status", status),
        ("retry_after", retry_after),
        ("latency_seconds", latency_seconds),
        ("code", code),
        ("message", message),
    ):
        if value is not None:
            spec[key] = value
    return spec


def _vm_path(subscription: str, resource_group: str, name: str) -> str:
    return f"/vms/{quote(subscription)}/{quote(resource_group)}/{quote(name)}"


def _policy_path(subscription: str, resource_group: str, location: str, name: str) -> str:
    parts = (subscription, resource_group, location, name)
    return "/policies/" + "/".join(quote(p) for p in parts)


class Calls:
    """The request behind each client method."""

    health = Call("GET", "/health")
    state = Call("GET", "/state")
    reset = Call("POST", "/reset")
    settings = Call("GET", "/settings")
    clock = Call("GET", "/clock")
    tick = Call("POST", "/tick")
    complete_operations = Call("POST", "/operations/complete")
    calls = Call("GET", "/calls")
    reset_calls = Call("DELETE", "/calls")
    faults = Call("GET", "/faults")
    clear_faults = Call("DELETE", "/faults")

    @staticmethod
    def update_settings(changes: dict[str, Any]) -> Call:
        return Call("PATCH", "/settings", changes)

    @staticmethod
    def move_clock(body: dict[str, Any]) -> Call:
        return Call("POST", "/clock", body)

    @staticmethod
    def add_fault(spec: dict[str, Any]) -> Call:
        return Call("POST", "/faults", spec)

    @staticmethod
    def add_vm(subscription: str, resource_group: str, vm: dict[str, Any]) -> Call:
        body = {"subscription": subscription, "resourceGroup": resource_group, "vm": vm}
        return Call("POST", "/vms", body)

    @staticmethod
    def remove_vm(subscription: str, resource_group: str, name: str) -> Call:
        return Call("DELETE", _vm_path(subscription, resource_group, name))

    @staticmethod
    def set_vm_tags(
        subscription: str, resource_group: str, name: str, tags: dict[str, str]
    ) -> Call:
        return Call("PUT", _vm_path(subscription, resource_group, name) + "/tags", {"tags": tags})

    @staticmethod
    def vm_access(subscription: str, resource_group: str, name: str) -> Call:
        return Call("GET", _vm_path(subscription, resource_group, name) + "/access")

    @staticmethod
    def reachability(
        subscription: str,
        resource_group: str,
        name: str,
        *,
        source: str,
        port: int,
        protocol: str,
        source_port: int | None,
    ) -> Call:
        query: dict[str, str | int] = {"source": source, "port": port, "protocol": protocol}
        if source_port is not None:
            query["sourcePort"] = source_port
        path = _vm_path(subscription, resource_group, name) + "/reachability?" + urlencode(query)
        return Call("GET", path)

    @staticmethod
    def put_policy(
        subscription: str, resource_group: str, location: str, name: str, body: dict[str, Any]
    ) -> Call:
        return Call("PUT", _policy_path(subscription, resource_group, location, name), body)

    @staticmethod
    def delete_policy(
        subscription: str, resource_group: str, location: str, name: str, *, remove_rules: bool
    ) -> Call:
        suffix = "" if remove_rules else "?remove_rules=false"
        return Call("DELETE", _policy_path(subscription, resource_group, location, name) + suffix)

    @staticmethod
    def set_defender_plan(subscription: str, pricing_tier: str, sub_plan: str | None) -> Call:
        body = {"pricing_tier": pricing_tier, "sub_plan": sub_plan}
        return Call("PUT", f"/defender/{quote(subscription)}", body)

    identities = Call("GET", "/identities")

    @staticmethod
    def add_identity(identity: dict[str, Any]) -> Call:
        return Call("POST", "/identities", identity)

    @staticmethod
    def remove_identity(client_id: str) -> Call:
        return Call("DELETE", f"/identities/{quote(client_id)}")


def identity_spec(
    *,
    client_id: str,
    tenant_id: str,
    secret: str | None,
    federated_subjects: Sequence[str],
    federated_issuer: str | None,
    scopes: Sequence[str],
    display_name: str | None,
    object_id: str | None,
) -> dict[str, Any]:
    """The world-file shape of an identity (see :mod:`.identities`)."""
    spec: dict[str, Any] = {
        "clientId": client_id,
        "tenantId": tenant_id,
        "federatedSubjects": list(federated_subjects),
        "scopes": list(scopes),
    }
    for key, value in (
        ("secret", secret),
        ("federatedIssuer", federated_issuer),
        ("displayName", display_name),
        ("objectId", object_id),
    ):
        if value is not None:
            spec[key] = value
    return spec


def count_calls(calls: dict[str, Any], operation: str, method: str | None) -> int:
    entry = calls.get(operation)
    if entry is None:
        return 0
    return int(entry["by_method"].get(method.upper(), 0) if method else entry["total"])
