"""kopf handlers for JitPolicy: decode, call the reconcile use case, record the outcome."""

from __future__ import annotations

from typing import Any

import kopf

from azure_jit_operator.azure.errors import classify
from azure_jit_operator.config import Settings
from azure_jit_operator.handlers.indexes import GOVERNANCE
from azure_jit_operator.reconcile.objects import ObjectView
from azure_jit_operator.reconcile.policies import (
    PolicyOutcome,
    delete_policy,
    status_changed,
    sync_policy,
)
from azure_jit_operator.reconcile.runtime import Runtime

RESOURCE = ("azurejit.dev", "v1alpha1", "jitpolicies")


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    @kopf.on.resume(*RESOURCE, registry=registry, id="policy_changed")
    @kopf.on.create(*RESOURCE, registry=registry, id="policy_changed")
    # Spec and annotation changes (the reconcile-policy annotation) both matter.
    @kopf.on.update(*RESOURCE, registry=registry, id="policy_changed")
    async def policy_changed(
        *,
        body: kopf.Body,
        memo: kopf.Memo,
        patch: kopf.Patch,
        **kwargs: Any,
    ) -> None:
        await _sync(
            body, memo, patch, kwargs[GOVERNANCE], drift_check=False, attempt=kwargs["retry"]
        )

    @kopf.timer(
        *RESOURCE,
        registry=registry,
        id="policy_drift",
        interval=settings.drift_interval.total_seconds(),
        initial_delay=settings.drift_interval.total_seconds(),
    )
    async def policy_drift(
        *,
        body: kopf.Body,
        memo: kopf.Memo,
        patch: kopf.Patch,
        **kwargs: Any,
    ) -> None:
        await _sync(
            body, memo, patch, kwargs[GOVERNANCE], drift_check=True, attempt=kwargs["retry"]
        )

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


async def _sync(
    body: kopf.Body,
    memo: kopf.Memo,
    patch: kopf.Patch,
    governance: kopf.Index[str, Any],
    *,
    drift_check: bool,
    attempt: int,
) -> None:
    rt: Runtime = memo.runtime
    obj = ObjectView.decode("JitPolicy", body)
    me = f"{obj.namespace}/{obj.name}"

    def governed_elsewhere(key: str) -> str | None:
        holders = sorted(governance.get(key, ()))
        return holders[0][-1] if holders and holders[0][-1] != me else None

    outcome = await sync_policy(
        rt, obj, governed_elsewhere=governed_elsewhere, drift_check=drift_check, attempt=attempt
    )
    _record(rt, obj, patch, outcome)


def _record(rt: Runtime, obj: ObjectView, patch: kopf.Patch, outcome: PolicyOutcome) -> None:
    if outcome.status and status_changed(obj.status, outcome.status):
        patch.status.update(outcome.status)
    for type_, reason, message in outcome.events:
        rt.post_event(obj.identity, type_, reason, message)
    if outcome.retry_in is not None:
        raise kopf.TemporaryError("policy not in sync yet; see status", delay=outcome.retry_in)
