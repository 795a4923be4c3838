"""kopf handlers for JitAccessRequest: one daemon per request runs its lifecycle; the
deletion handler (behind the finalizer) closes what it opened before the object goes."""

from __future__ import annotations

from typing import Any

import kopf

from azure_jit_operator.handlers.indexes import POLICY_VIEWS
from azure_jit_operator.handlers.lifecycle import FINALIZER
from azure_jit_operator.reconcile.objects import ObjectView
from azure_jit_operator.reconcile.requests import PolicyView, RequestWorker
from azure_jit_operator.reconcile.revoke import StillOpenError, revoke_request
from azure_jit_operator.reconcile.runtime import Runtime

RESOURCE = ("azurejit.dev", "v1alpha1", "jitaccessrequests")
# Time given to an in-flight Azure call and its status write when the operator stops.
GRACEFUL_STOP_SECONDS = 60.0


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.daemon(
        *RESOURCE,
        registry=registry,
        id="request_lifecycle",
        cancellation_timeout=GRACEFUL_STOP_SECONDS,
        backoff=5.0,
    )
    async def request_lifecycle(
        *,
        body: kopf.Body,
        memo: kopf.Memo,
        stopped: kopf.DaemonStopped,
        **kwargs: Any,
    ) -> None:
        # Indexes arrive as keyword arguments named after their functions.
        policy_views: kopf.Index[tuple[str, str], PolicyView] = kwargs[POLICY_VIEWS]
        rt: Runtime = memo.runtime
        obj = ObjectView.decode("JitAccessRequest", body)
        if obj.deleting:
            return

        def policy(namespace: str, name: str) -> PolicyView | None:
            found = list(policy_views.get((namespace, name), ()))
            return found[0] if found else None

        worker = RequestWorker(
            rt,
            obj,
            policies=policy,
            open_ports=memo.open_ports,
            stopped=stopped.wait,
            is_stopped=lambda: bool(stopped),
            # kopf keeps a daemon's body up to date with every watch event.
            live_status=lambda: body.get("status") or {},
            protected=lambda: FINALIZER in (body.metadata.get("finalizers") or ()),
        )
        await worker.run()

    @kopf.on.delete(*RESOURCE, registry=registry, id="request_deleted")
    async def request_deleted(*, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
        policy_views: kopf.Index[tuple[str, str], PolicyView] = kwargs[POLICY_VIEWS]
        rt: Runtime = memo.runtime
        obj = ObjectView.decode("JitAccessRequest", body)
        try:
            await revoke_request(
                rt,
                obj,
                open_ports=memo.open_ports,
                policy_exists=lambda name: bool(list(policy_views.get((obj.namespace, name), ()))),
            )
        except StillOpenError as exc:
            rt.revoked.discard(obj.uid)
            raise kopf.TemporaryError(f"ports not closed yet: {exc}", delay=5) from exc
