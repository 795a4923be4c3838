"""kopf's one handler for JitPolicy: its deletion (behind the finalizer) deletes or keeps the
Azure policy. Syncs and drift checks are the controller's reconciles of the policy's key
(``reconcile/policy_reconcile.py``), fed by the watch events ``handlers/requests.py`` takes."""

from __future__ import annotations

from typing import Any

import kopf

from azure_jit_operator.azure.errors import classify
from azure_jit_operator.reconcile.objects import ObjectView
from azure_jit_operator.reconcile.policies import delete_policy
from azure_jit_operator.reconcile.runtime import Runtime

RESOURCE = ("azurejit.dev", "v1alpha1", "jitpolicies")


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.delete(*RESOURCE, registry=registry, id="policy_deleted")
    async def policy_deleted(*, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        rt: Runtime = memo.runtime
        obj = ObjectView.decode("JitPolicy", body)
        try:
            what = await delete_policy(rt, obj)
        except Exception as exc:
            failure = classify(exc)
            if failure.retryable:
                raise kopf.TemporaryError(
                    f"deleting the Azure policy: {failure}", delay=failure.retry_after or 10
                ) from exc
            raise kopf.TemporaryError(
                f"cannot delete the Azure policy: {failure}", delay=60
            ) from exc
        rt.post_event(obj.identity, "Normal", "Deleted", what)
