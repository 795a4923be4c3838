"""Long-running operations the way Microsoft.Network runs them.

A write that Azure runs asynchronously (security rule PUT/DELETE, NSG PUT/DELETE) answers
201/202 with ``Azure-AsyncOperation`` (status monitor), ``Location`` (result) and
``Retry-After`` headers and takes effect when the operation completes. An operation
completes after ``lro_in_progress_polls`` status polls answered ``InProgress``, or, when
nobody polls, ``lro_background_seconds`` after it started (Azure finishes without you).

Status monitor: ``GET /subscriptions/{s}/providers/Microsoft.Network/locations/{l}/operations/{id}``
answers ``{"status": "InProgress" | "Succeeded"}``; result: ``.../operationResults/{id}``
answers 202 while running and 204 (or 200 with the resource) when done.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure_arm_emulator import errors
from azure_arm_emulator.arm import NETWORK_API_VERSIONS, ArmRequest, ArmResponse, Route
from azure_arm_emulator.settings import EmulatorSettings

OPERATIONS_PATH = "/subscriptions/{subscriptionId}/providers/Microsoft.Network/locations/{location}"


@dataclass
class Operation:
    id: str
    subscription: str
    location: str
    polls_left: int
    deadline: float
    on_complete: Callable[[], None]
    result: Callable[[], Any] | None = None
    status: str = "InProgress"
    started: float = field(default_factory=time.monotonic)


class OperationTracker:
    def __init__(self, settings: EmulatorSettings, *, wake: Callable[[], None]) -> None:
        self._settings = settings
        self._wake = wake
        self.operations: dict[str, Operation] = {}

    def start(
        self,
        *,
        subscription: str,
        location: str,
        on_complete: Callable[[], None],
        result: Callable[[], Any] | None = None,
    ) -> Operation:
        operation = Operation(
            id=str(uuid.uuid4()),
            subscription=subscription,
            location=location.replace(" ", "").lower(),
            polls_left=self._settings.lro_in_progress_polls,
            deadline=time.monotonic() + self._settings.lro_background_seconds,
            on_complete=on_complete,
            result=result,
        )
        self.operations[operation.id] = operation
        self._wake()
        return operation

    def headers(self, operation: Operation, request: ArmRequest) -> dict[str, str]:
        base = (
            f"/subscriptions/{operation.subscription}/providers/Microsoft.Network"
            f"/locations/{operation.location}"
        )
        headers = {
            "Azure-AsyncOperation": request.url_for(
                f"{base}/operations/{operation.id}", **{"api-version": request.api_version}
            ),
            "Location": request.url_for(
                f"{base}/operationResults/{operation.id}", **{"api-version": request.api_version}
            ),
        }
        headers.update(self._retry_after())
        return headers

    def _retry_after(self) -> dict[str, str]:
        seconds = self._settings.lro_retry_after_seconds
        return {} if seconds is None else {"Retry-After": str(seconds)}

    def _poll(self, operation_id: str, request: ArmRequest) -> Operation:
        operation = self.operations.get(operation_id)
        if (
            operation is None
            or operation.subscription.lower() != request.params["subscriptionId"].lower()
        ):
            raise errors.nested_not_found(request.path)
        if operation.status == "InProgress":
            if operation.polls_left > 0:
                operation.polls_left -= 1
            else:
                self._complete(operation)
        return operation

    def _complete(self, operation: Operation) -> None:
        if operation.status != "InProgress":
            return
        operation.status = "Succeeded"
        operation.on_complete()

    def complete_due(self, now: float | None = None) -> None:
        """Finish operations whose background deadline passed; forget old finished ones."""
        moment = time.monotonic() if now is None else now
        for operation in list(self.operations.values()):
            if operation.status == "InProgress" and operation.deadline <= moment:
                self._complete(operation)
            elif operation.status != "InProgress" and moment - operation.started > 3600:
                del self.operations[operation.id]

    def next_deadline(self) -> float | None:
        pending = [o.deadline for o in self.operations.values() if o.status == "InProgress"]
        return min(pending) if pending else None

    def complete_all(self) -> None:
        for operation in list(self.operations.values()):
            self._complete(operation)

    def pending(self) -> list[dict[str, Any]]:
        return [
            {"id": o.id, "location": o.location, "status": o.status}
            for o in self.operations.values()
            if o.status == "InProgress"
        ]

    # ----------------------------------------------------------------------- handlers

    def status_monitor(self, request: ArmRequest) -> ArmResponse:
        operation = self._poll(request.params["operationId"], request)
        headers = self._retry_after() if operation.status == "InProgress" else {}
        return ArmResponse(200, {"status": operation.status}, headers)

    def operation_result(self, request: ArmRequest) -> ArmResponse:
        operation = self._poll(request.params["operationId"], request)
        if operation.status == "InProgress":
            return ArmResponse(
                202,
                None,
                {
                    "Location": str(
                        request.url_for(request.path, **{"api-version": request.api_version})
                    ),
                    **self._retry_after(),
                },
            )
        body = operation.result() if operation.result else None
        return ArmResponse(200 if body is not None else 204, body)

    def routes(self) -> list[Route]:
        return [
            Route(
                "GET",
                OPERATIONS_PATH + "/operations/{operationId}",
                "AzureAsyncOperation_Get",
                (*NETWORK_API_VERSIONS, "2022-09-01"),
                "Microsoft.Network/locations/operations/read",
                self.status_monitor,
                scoped=False,
            ),
            Route(
                "GET",
                OPERATIONS_PATH + "/operationResults/{operationId}",
                "OperationResults_Get",
                (*NETWORK_API_VERSIONS, "2022-09-01"),
                "Microsoft.Network/locations/operationResults/read",
                self.operation_result,
                scoped=False,
            ),
        ]
