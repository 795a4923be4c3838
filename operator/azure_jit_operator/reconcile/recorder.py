"""Writing a request's status and its Events together: one transition, one patch, and an
Event only when something actually flipped (no Event storms on retries)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from azure_jit_operator import audit
from azure_jit_operator.domain.conditions import Condition
from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.domain.request_status import AzureRecord, RequestStatus, enter
from azure_jit_operator.kube.api import Gone
from azure_jit_operator.metrics import REQUESTS_TOTAL
from azure_jit_operator.reconcile.audit_trail import (
    decisions_audited,
    decisions_count,
    write_records,
)
from azure_jit_operator.reconcile.objects import ObjectView
from azure_jit_operator.reconcile.runtime import Runtime

log = logging.getLogger("azure_jit_operator.requests")


class Stop(Exception):  # noqa: N818 - control flow, not an error
    """The worker must end: the object is gone or its deletion has taken over."""


class Recorder:
    def __init__(
        self,
        rt: Runtime,
        obj: ObjectView,
        status: RequestStatus,
        *,
        may_write: Callable[[], bool] = lambda: True,
    ) -> None:
        self.rt = rt
        self.obj = obj
        self.status = status
        self._may_write = may_write
        # Approvers' decisions already in the audit log (persisted in status.approval).
        self.decisions_audited = decisions_audited(obj.status)

    async def write(
        self,
        phase: Phase,
        reason: str,
        message: str,
        *,
        policy: str,
        clear_intent: bool = False,
        azure: AzureRecord | None = None,
        extra: tuple[Condition, ...] = (),
        required_approvals: int = 1,
        **changes: object,
    ) -> None:
        if not self._may_write():
            raise Stop
        if clear_intent and self.status.azure.initiation_id:
            changes["azure"] = AzureRecord()
        elif azure is not None:
            changes["azure"] = azure
        step = enter(
            self.status,
            phase,
            reason=reason,
            message=message,
            now=self.rt.clock.now(),
            extra=extra,
            **changes,
        )
        if step.status == self.status:
            return
        body = step.status.to_dict(generation=self.obj.generation)
        cursor = max(self.decisions_audited, decisions_audited(self.obj.status))
        decided = decisions_count(self.obj.status)
        if decided > cursor:
            body["approval"] = {"decisionsAudited": decided}
        try:
            await self.rt.kube.patch_status(self.obj.ref, body)
        except Gone:
            raise Stop from None
        before, self.status = self.status, step.status
        audit.emit(
            write_records(
                self.obj,
                before,
                step.status,
                cursor=cursor,
                required_approvals=required_approvals,
                operator=self.rt.username,
                now=self.rt.clock.now(),
            )
        )
        self.decisions_audited = max(cursor, decided)
        if step.event_type is None:
            return
        self.rt.post_event(
            self.obj.identity, step.event_type, step.event_reason, step.event_message
        )
        log.info(
            "%s: %s (%s) %s",
            self.obj,
            phase.value,
            reason,
            message,
            extra={
                "k8s_namespace": self.obj.namespace,
                "k8s_name": self.obj.name,
                "phase": phase.value,
            },
        )
        if phase is not Phase.PENDING:
            REQUESTS_TOTAL.labels(
                namespace=self.obj.namespace, policy=policy, outcome=phase.value
            ).inc()
