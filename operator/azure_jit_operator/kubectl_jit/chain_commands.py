"""``kubectl jit extend`` and ``kubectl jit review``: a follow-on request that continues an
Active one, and an approver's after-the-fact review of an emergency (break-glass) request.

``extend NAME --for 30m`` reads NAME and creates a JitAccessRequest with the same policy, VM,
ports and sources and ``spec.extends: NAME``; the operator opens it at once, sharing the port
(no gap, no second source), ending 30m after NAME's expiresAt, when the whole chain stays
within the port's maximum. ``review NAME`` appends the caller's own ``{user, time, comment?}``
to ``status.reviews`` (status subresource; the admission webhook checks the ``approve`` verb on
the JitPolicy and that the caller is not the requester), guarded like ``approve`` against two
reviewers writing at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from azure_jit_operator.domain.durations import format_kube_duration
from azure_jit_operator.domain.timestamps import format_timestamp
from azure_jit_operator.kubectl_jit.chain_arguments import (
    MAX_JUSTIFICATION,
    ExtendOptions,
    ReviewOptions,
)
from azure_jit_operator.kubectl_jit.client import GROUP, KIND, REFUSED, VERSION, CliError, Cluster

OK = 0
ATTEMPTS = 5


# ----------------------------------------------------------------------------- extend


def extension_manifest(predecessor: Mapping[str, Any], options: ExtendOptions) -> dict[str, Any]:
    """The follow-on request: the predecessor's policy, VM, ports and sources."""
    spec = predecessor.get("spec") or {}
    name = str((predecessor.get("metadata") or {}).get("name", options.name))
    justification = options.reason or str(spec.get("justification") or f"extends {name}")
    stem = name[: 253 - len("-ext-") - 5]
    metadata: dict[str, Any] = (
        {"name": options.new_name} if options.new_name else {"generateName": f"{stem}-ext-"}
    )
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "policyName": spec.get("policyName"),
            "virtualMachine": spec.get("virtualMachine"),
            "ports": [
                {"number": p.get("number"), "sourceAddressPrefix": p.get("sourceAddressPrefix")}
                for p in spec.get("ports") or ()
            ],
            "duration": format_kube_duration(options.duration),
            "justification": justification[:MAX_JUSTIFICATION],
            "extends": name,
        },
    }


def refuse_unless_extendable(
    predecessor: Mapping[str, Any], *, name: str, successor_gone: bool = False
) -> None:
    status = predecessor.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    if phase != "Active":
        raise CliError(
            f"jitaccessrequest/{name} is {phase}: only an Active request can be extended"
            + (
                "; create a new request with `kubectl jit request`"
                if phase != "Pending"
                else "; wait until it is open (`kubectl jit status " + name + "`)"
            )
        )
    if status.get("extendedBy") and not successor_gone:
        successor = str(status["extendedBy"])
        raise CliError(
            f"jitaccessrequest/{name} is already extended by {successor}; extend that one: "
            f"kubectl jit extend {successor} --for ..."
        )


def run_extend(
    cluster: Cluster,
    options: ExtendOptions,
    *,
    say: Callable[[str], None],
    wait: Callable[[str, timedelta], dict[str, Any]],
) -> int:
    predecessor = cluster.get_request(options.name)
    if predecessor is None:
        raise CliError(
            f"jitaccessrequest/{options.name} not found in namespace {cluster.namespace}; list "
            "them with `kubectl jit list`"
        )
    successor = str((predecessor.get("status") or {}).get("extendedBy") or "")
    # A revoked (deleted) extension frees the slot: the operator allows a new one.
    gone = bool(successor) and cluster.get_request(successor) is None
    refuse_unless_extendable(predecessor, name=options.name, successor_gone=gone)
    try:
        created = cluster.create_request(extension_manifest(predecessor, options))
    except CliError as exc:
        if exc.status == 409:
            raise CliError(f"{exc.message}\npick another --name, or leave it out") from None
        raise
    name = str(created["metadata"]["name"])
    say(
        f"jitaccessrequest/{name} created: extends {options.name} by "
        f"{format_kube_duration(options.duration)}"
    )
    if not options.wait:
        say(f"follow it: kubectl jit status {name} -n {cluster.namespace}")
        return OK
    final = wait(name, options.timeout)
    status = final.get("status") or {}
    if status.get("phase") == "Active":
        say(f"extended: access continues until {status.get('expiresAt')} ({name})")
        return OK
    raise CliError(
        f"jitaccessrequest/{name} is {status.get('phase')}: "
        f"{status.get('message') or 'no reason recorded'}",
        code=REFUSED,
    )


# ----------------------------------------------------------------------------- review


def review_entry(*, user: str, comment: str, now: datetime) -> dict[str, Any]:
    entry: dict[str, Any] = {"user": user, "time": format_timestamp(now)}
    if comment:
        entry["comment"] = comment
    return entry


def append_review_operations(
    request: Mapping[str, Any], entry: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The JSON patch appending ``entry`` to ``status.reviews`` as read (``test`` first)."""
    status = request.get("status")
    reviews = status.get("reviews") if isinstance(status, Mapping) else None
    if isinstance(reviews, list):
        return [
            {"op": "test", "path": "/status/reviews", "value": reviews},
            {"op": "add", "path": "/status/reviews/-", "value": dict(entry)},
        ]
    version = str((request.get("metadata") or {}).get("resourceVersion", ""))
    guard = {"op": "test", "path": "/metadata/resourceVersion", "value": version}
    if isinstance(status, Mapping):
        return [guard, {"op": "add", "path": "/status/reviews", "value": [dict(entry)]}]
    return [guard, {"op": "add", "path": "/status", "value": {"reviews": [dict(entry)]}}]


def refuse_unless_reviewable(request: Mapping[str, Any], *, name: str) -> None:
    if (request.get("spec") or {}).get("emergency") is not True:
        raise CliError(
            f"jitaccessrequest/{name} is no emergency request: only break-glass requests are "
            "reviewed (others are approved before they open: kubectl jit approve)"
        )


def run_review(
    cluster: Cluster,
    options: ReviewOptions,
    *,
    now: Callable[[], datetime],
    say: Callable[[str], None],
) -> int:
    name = options.name
    user = cluster.username()
    for _attempt in range(ATTEMPTS):
        request = cluster.get_request_status(name)
        if request is None:
            raise CliError(
                f"jitaccessrequest/{name} not found in namespace {cluster.namespace}; list "
                "them with `kubectl jit list`"
            )
        refuse_unless_reviewable(request, name=name)
        entry = review_entry(user=user, comment=options.comment, now=now())
        try:
            cluster.patch_request_status(name, append_review_operations(request, entry))
        except CliError as exc:
            if exc.status not in (409, 422) or not _changed_since(cluster, name, request):
                raise
            continue
        say(f"jitaccessrequest/{name} reviewed by {user}")
        say(f"the operator sets ReviewRequired=False: kubectl jit status {name}")
        return OK
    raise CliError(
        f"could not record your review: jitaccessrequest/{name} kept changing "
        f"({ATTEMPTS} attempts); try again"
    )


def _changed_since(cluster: Cluster, name: str, seen: Mapping[str, Any]) -> bool:
    current = cluster.get_request_status(name)
    if current is None:
        return False
    before = (seen.get("metadata") or {}).get("resourceVersion")
    return bool((current.get("metadata") or {}).get("resourceVersion") != before)
