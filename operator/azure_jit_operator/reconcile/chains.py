"""The VM reconcile's part in extensions and break-glass: what an opening extension records
on itself and on its predecessor, what an expiring predecessor says about its extension, and
the Warning an emergency request raises when it opens."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from azure_jit_operator.domain.audit import Action, Actor
from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.domain.timestamps import format_timestamp
from azure_jit_operator.kube.api import Gone, ObjectRef
from azure_jit_operator.metrics import EMERGENCY_REQUESTS_TOTAL
from azure_jit_operator.reconcile.audit_trail import emit_decision
from azure_jit_operator.reconcile.context import Context
from azure_jit_operator.reconcile.emergency_reviews import is_emergency
from azure_jit_operator.reconcile.tracked import Tracked

log = logging.getLogger("azure_jit_operator.requests")
EMERGENCY_EVENT = "EmergencyAccess"


def chain_fields(tracked: Tracked) -> dict[str, Any]:
    """Status fields an extension records with its intent: whom it extends, the chain's start."""
    link = tracked.binding.extension if tracked.binding else None
    if link is None:
        return {}
    return {"extends": link.predecessor, "chain_start": link.chain_start}


async def link_predecessor(ctx: Context, tracked: Tracked) -> None:
    """Record ``status.extendedBy`` on the predecessor of an extension that just opened.

    A merge patch of that one field, so that it never races the predecessor's own status
    writes (which do not carry it); it only informs people, nothing is decided from it."""
    predecessor_name = tracked.status.extends  # recorded with the extension's intent
    if not predecessor_name:
        return
    spec = tracked.spec()
    requester = spec.requester if spec else None
    emit_decision(
        tracked.obj,
        tracked.status,
        Action.EXTENDED,
        actor=Actor.user(requester.username, requester.groups) if requester else Actor.user(""),
        time=ctx.rt.clock.now(),
        reason="Extended",
        message=f"access of {predecessor_name} continues under {tracked.obj.name}",
        details={"follows": predecessor_name}
        | (
            {"expiresAt": format_timestamp(tracked.status.expires_at)}
            if tracked.status.expires_at
            else {}
        ),
    )
    predecessor = ObjectRef(tracked.obj.ref.plural, tracked.obj.namespace, predecessor_name)
    try:
        await ctx.rt.kube.patch_status(predecessor, {"extendedBy": tracked.obj.name})
    except Gone:
        return
    except Exception as exc:  # informative only: the extension is open regardless
        log.warning("%s: could not record extendedBy on %s: %s", tracked.obj, predecessor_name, exc)


def extension_note(ctx: Context, tracked: Tracked) -> str:
    """What an expiring request's message says about its extension (empty when none)."""
    found = ctx.cache.extensions_of(tracked.obj.namespace, tracked.obj.name)
    if not found:
        return ""
    successor = found[0]
    status = successor.status
    if status.phase is Phase.ACTIVE or status.azure.initiation_id:
        until = f" until {format_timestamp(status.expires_at)}" if status.expires_at else ""
        return f"; access continues under its extension {successor.obj.name}{until}"
    why = f" ({status.message})" if status.message else ""
    return (
        f"; its extension {successor.obj.name} was not open yet{why}, so the port closed: an "
        "extension opens only while the request it extends is Active"
    )


def announce_emergency(ctx: Context, tracked: Tracked, expires: datetime) -> None:
    """An emergency request opened without approval: never silently."""
    if not is_emergency(tracked):
        return
    spec = tracked.spec()
    who = spec.requester.username if spec and spec.requester else "an unknown requester"
    vm = str(tracked.obj.spec.get("virtualMachine", ""))
    ctx.rt.post_event(
        tracked.obj.identity,
        "Warning",
        EMERGENCY_EVENT,
        f"emergency access to {vm} opened without approval for {who} until "
        f"{format_timestamp(expires)} (break-glass); an approver must review it: "
        f"kubectl jit review {tracked.obj.name}",
    )
    EMERGENCY_REQUESTS_TOTAL.labels(
        namespace=tracked.obj.namespace, policy=ctx.policy_label(tracked)
    ).inc()
    emit_decision(
        tracked.obj,
        tracked.status,
        Action.EMERGENCY,
        actor=Actor.user(spec.requester.username, spec.requester.groups)
        if spec and spec.requester
        else Actor.user(""),
        time=ctx.rt.clock.now(),
        reason=EMERGENCY_EVENT,
        message=f"emergency access opened without approval until {format_timestamp(expires)}",
    )
    log.warning(
        "%s: emergency access opened without approval (break-glass)",
        tracked.obj,
        extra={"k8s_namespace": tracked.obj.namespace, "k8s_name": tracked.obj.name},
    )
