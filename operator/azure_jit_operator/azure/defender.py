"""Reading the subscription's Defender for Servers plan (Microsoft.Security/pricings)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from azure_jit_operator.azure.clients import AzureClients
from azure_jit_operator.azure.errors import classify
from azure_jit_operator.domain.defender_plan import PRICING_NAME, ServersPlan

log = logging.getLogger("azure_jit_operator.azure")

# A plan changes rarely; a policy's sync and drift checks need not read it each time.
PLAN_TTL = timedelta(minutes=10)


class DefenderAccess:
    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients
        self._plans: dict[str, tuple[ServersPlan | None, datetime]] = {}

    async def servers_plan(self, subscription_id: str, *, now: datetime) -> ServersPlan | None:
        """The plan (cached), or None when it cannot be read (no ``pricings/read``
        permission): then JIT's own answers tell, as before this preflight."""
        key = subscription_id.lower()
        cached = self._plans.get(key)
        if cached is not None and now - cached[1] < PLAN_TTL:
            return cached[0]
        plan = await self._read(subscription_id)
        self._plans[key] = (plan, now)
        return plan

    async def _read(self, subscription_id: str) -> ServersPlan | None:
        pricing = self._clients.for_subscription(subscription_id).pricing
        try:
            found = await pricing.pricings.get(f"subscriptions/{subscription_id}", PRICING_NAME)
        except Exception as exc:
            failure = classify(exc)
            if failure.retryable:
                raise failure from exc
            # Not readable (no pricings/read, an endpoint without pricings): the preflight
            # is advice, not a gate; Azure's own answers to the policy write still tell.
            log.warning("cannot read the Defender plan of %s: %s", subscription_id, failure)
            return None
        return ServersPlan(
            pricing_tier=str(getattr(found, "pricing_tier", "") or ""),
            sub_plan=str(getattr(found, "sub_plan", "") or ""),
        )
