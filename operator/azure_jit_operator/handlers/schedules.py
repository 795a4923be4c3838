"""kopf's one handler for JitAccessSchedule, thin: every watch event goes into the
controller's cache and queues the schedule's key (``reconcile/schedule_reconcile.py``).
No finalizer: a schedule owns its window requests (ownerReferences), and each request's own
finalizer closes its ports when garbage collection deletes it."""

from __future__ import annotations

from typing import Any

import kopf

from azure_jit_operator.reconcile.controller import Controller

RESOURCE = ("azurejit.dev", "v1alpha1", "jitaccessschedules")


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.event(*RESOURCE, registry=registry, id="schedule_seen")
    async def schedule_seen(
        *, type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
    ) -> None:
        controller: Controller = memo.controller
        controller.schedule_event(type, body)
