"""Thin kopf handlers: decode the object, call a reconcile use case, record the outcome.

``build_registry`` registers everything on a fresh registry (nothing at import time), so
one process can run several operators in tests, each with its own settings and clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kopf

from azure_jit_operator.azure.clients import default_credential
from azure_jit_operator.clock import Clock
from azure_jit_operator.config import Settings
from azure_jit_operator.handlers import admission, lifecycle, policies, requests, schedules


def build_registry(
    settings: Settings,
    *,
    clock: Clock,
    credential_factory: Callable[[Settings], Any] = default_credential,
    identity: str = "azure-jit-operator",
    priority: int = 0,
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    lifecycle.register(
        registry,
        settings,
        clock=clock,
        credential_factory=credential_factory,
        identity=identity,
        priority=priority,
    )
    policies.register(registry)
    requests.register(registry)
    schedules.register(registry)
    if settings.webhooks != "off":
        admission.register(registry)
        admission.register_schedules(registry)
    return registry
