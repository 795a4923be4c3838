"""``approve`` / ``deny``: append the caller's own decision to a request's
``status.approvals`` through the status subresource.

The entry is ``{user, decision, reason?, time}``: ``user`` is who the API server says the
caller is (a SelfSubjectReview, never a flag), ``time`` is now (UTC, RFC 3339, seconds).
The operator's admission webhook decides whether the entry is acceptable (RBAC verb
``approve`` on the JitPolicy, not the requester, once per approver, time close to now); its
refusal is shown word for word.

Concurrency: the JSON patch first ``test``s the list it extends (or, when there is no list
yet, the object's resourceVersion), so two approvers deciding at once never overwrite each
other: the loser's patch fails, and it reads the request again and retries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from azure_jit_operator.domain.approvals import APPROVED
from azure_jit_operator.domain.timestamps import format_timestamp
from azure_jit_operator.kubectl_jit.client import CliError, Cluster

ATTEMPTS = 5


def decision_entry(*, user: str, decision: str, reason: str, now: datetime) -> dict[str, Any]:
    entry: dict[str, Any] = {"user": user, "decision": decision, "time": format_timestamp(now)}
    if reason:
        entry["reason"] = reason
    return entry


def append_operations(request: Mapping[str, Any], entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch appending ``entry`` to what ``request`` (as read) records."""
    status = request.get("status")
    approvals = status.get("approvals") if isinstance(status, Mapping) else None
    if isinstance(approvals, list):
        return [
            {"op": "test", "path": "/status/approvals", "value": approvals},
            {"op": "add", "path": "/status/approvals/-", "value": dict(entry)},
        ]
    # No list to test against: guard on the whole object's version instead.
    version = str((request.get("metadata") or {}).get("resourceVersion", ""))
    guard = {"op": "test", "path": "/metadata/resourceVersion", "value": version}
    if isinstance(status, Mapping):
        return [guard, {"op": "add", "path": "/status/approvals", "value": [dict(entry)]}]
    return [guard, {"op": "add", "path": "/status", "value": {"approvals": [dict(entry)]}}]


def refuse_if_decided(request: Mapping[str, Any], *, name: str) -> None:
    """Only a Pending request waits for decisions; say so instead of recording a pointless one."""
    phase = str((request.get("status") or {}).get("phase") or "Pending")
    if phase == "Pending":
        return
    message = str((request.get("status") or {}).get("message") or "")
    detail = f" ({message})" if message else ""
    raise CliError(
        f"jitaccessrequest/{name} is {phase}{detail}: decisions are only recorded while a "
        f"request is Pending; see `kubectl jit status {name}`"
    )


def record_decision(
    cluster: Cluster,
    name: str,
    *,
    decision: str,
    reason: str,
    now: Callable[[], datetime],
) -> str:
    """Append the caller's decision; returns the user name it was recorded for."""
    user = cluster.username()
    for _attempt in range(ATTEMPTS):
        request = _read(cluster, name)
        refuse_if_decided(request, name=name)
        entry = decision_entry(user=user, decision=decision, reason=reason, now=now())
        try:
            cluster.patch_request_status(name, append_operations(request, entry))
        except CliError as exc:
            if exc.status not in (409, 422) or not _changed_since(cluster, name, request):
                raise
            continue  # someone else wrote first: read again and retry
        return user
    verb = "approval" if decision == APPROVED else "denial"
    raise CliError(
        f"could not record your {verb}: jitaccessrequest/{name} kept changing "
        f"({ATTEMPTS} attempts); try again"
    )


def _read(cluster: Cluster, name: str) -> dict[str, Any]:
    found = cluster.get_request_status(name)
    if found is None:
        raise CliError(
            f"jitaccessrequest/{name} not found in namespace {cluster.namespace}; list them "
            "with `kubectl jit list` (or -A for every namespace)"
        )
    return found


def _changed_since(cluster: Cluster, name: str, seen: Mapping[str, Any]) -> bool:
    """A failed ``test`` leaves a 422 that looks like any invalid patch; the object having
    moved on since it was read tells the two apart."""
    current = cluster.get_request_status(name)
    if current is None:
        return False
    before = (seen.get("metadata") or {}).get("resourceVersion")
    return bool((current.get("metadata") or {}).get("resourceVersion") != before)
