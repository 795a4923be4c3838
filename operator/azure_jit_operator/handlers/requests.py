"""kopf handlers for JitAccessRequest, thin: every watch event goes into the controller's
cache and queues the request's key; the deletion handler (behind the finalizer) waits for
the request's VM reconcile to close what it opened before the object goes. No daemon, no
timer per request."""

from __future__ import annotations

from typing import Any

import kopf

from azure_jit_operator.reconcile.controller import Controller
from azure_jit_operator.reconcile.vm_reconcile import StillOpenError

RESOURCE = ("azurejit.dev", "v1alpha1", "jitaccessrequests")
POLICY_RESOURCE = ("azurejit.dev", "v1alpha1", "jitpolicies")


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.event(*RESOURCE, registry=registry, id="request_seen")
    async def request_seen(*, type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        controller: Controller = memo.controller
        controller.request_event(type, body)

    @kopf.on.event(*POLICY_RESOURCE, registry=registry, id="policy_seen")
    async def policy_seen(*, type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        controller: Controller = memo.controller
        controller.policy_event(type, body)

    @kopf.on.delete(*RESOURCE, registry=registry, id="request_deleted")
    async def request_deleted(*, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        controller: Controller = memo.controller
        try:
            await controller.revoke(body)
        except StillOpenError as exc:
            raise kopf.TemporaryError(f"ports not closed yet: {exc}", delay=5) from exc
