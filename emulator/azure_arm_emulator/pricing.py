"""Microsoft.Security pricings: which Defender for Cloud plans a subscription has (E12).

JIT needs Defender for Servers Plan 2 (``VirtualMachines``: ``pricingTier: Standard``,
``subPlan: P2``); the PowerShell tests set it before anything else. Every subscription
starts with it; ``set_defender_plan`` (admin API) models one without. The other plans are
listed as ``Free`` so a list reads like a subscription's. Bodies follow the azure-mgmt-security
models of each api-version (2018-06-01 knows no ``subPlan``; 2023-01-01 added
``enablementTime``; 2024-01-01 ``inherited``/``resourcesCoverageStatus``). Only reads are
served; what JIT does on a subscription without Plan 2 is not modelled (unknown, U5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure_arm_emulator import errors
from azure_arm_emulator.arm import ArmRequest, ArmResponse, Route
from azure_arm_emulator.clock import EmulatorClock, format_timestamp
from azure_arm_emulator.store import Store

PRICING_API_VERSIONS = ("2024-01-01", "2023-01-01", "2022-03-01", "2018-06-01")
SERVERS = "VirtualMachines"
# The other plans a subscription lists (all Free here); names as ARM spells them.
_OTHER_PLANS = ("SqlServers", "AppServices", "StorageAccounts", "KeyVaults", "Arm", "Containers")
_TIERS = {"standard": "Standard", "free": "Free"}
_SUB_PLANS = {"p1": "P1", "p2": "P2"}
_PRICINGS = "/subscriptions/{subscriptionId}/providers/Microsoft.Security/pricings"


@dataclass(frozen=True, slots=True)
class DefenderPlan:
    pricing_tier: str  # Standard | Free
    sub_plan: str | None  # P1 | P2 for Standard servers


DEFAULT_SERVERS_PLAN = DefenderPlan("Standard", "P2")


def parse_plan(pricing_tier: object, sub_plan: object) -> DefenderPlan:
    """A plan from admin input; ValueError (the admin API's 400) otherwise."""
    tier = _TIERS.get(pricing_tier.lower()) if isinstance(pricing_tier, str) else None
    if tier is None:
        raise ValueError("pricing_tier must be 'Standard' or 'Free'")
    if tier == "Free":
        if sub_plan is not None:
            raise ValueError("a Free plan has no sub_plan")
        return DefenderPlan("Free", None)
    plan = _SUB_PLANS.get(sub_plan.lower()) if isinstance(sub_plan, str) else None
    if plan is None:
        raise ValueError("a Standard servers plan needs sub_plan 'P1' or 'P2'")
    return DefenderPlan("Standard", plan)


class PricingApi:
    def __init__(self, store: Store, clock: EmulatorClock) -> None:
        self.store = store
        self.clock = clock
        self.started = clock.now()
        self.servers: dict[str, DefenderPlan] = {}  # subscription (lower) -> servers plan
        self.changed: dict[str, datetime] = {}  # subscription (lower) -> when it was set

    def servers_plan(self, subscription: str) -> DefenderPlan:
        return self.servers.get(subscription.lower(), DEFAULT_SERVERS_PLAN)

    def set_servers_plan(self, subscription: str, plan: DefenderPlan) -> None:
        self.store.require_subscription(subscription)
        self.servers[subscription.lower()] = plan
        self.changed[subscription.lower()] = self.clock.now()

    def _render(self, subscription: str, name: str, api_version: str) -> dict[str, Any]:
        plan = self.servers_plan(subscription) if name == SERVERS else DefenderPlan("Free", None)
        props: dict[str, Any] = {"pricingTier": plan.pricing_tier}
        if api_version != "2018-06-01" and plan.sub_plan is not None:
            props["subPlan"] = plan.sub_plan
        props["freeTrialRemainingTime"] = "PT0S"
        if api_version >= "2023-01-01" and plan.pricing_tier == "Standard":
            since = self.changed.get(subscription.lower(), self.started)
            props["enablementTime"] = format_timestamp(since)
        if api_version >= "2024-01-01":
            props["inherited"] = "False"
            props["resourcesCoverageStatus"] = (
                "FullyCovered" if plan.pricing_tier == "Standard" else "NotCovered"
            )
        return {
            "id": f"/subscriptions/{subscription}/providers/Microsoft.Security/pricings/{name}",
            "name": name,
            "type": "Microsoft.Security/pricings",
            "properties": props,
        }

    def _names(self) -> list[str]:
        return [SERVERS, *_OTHER_PLANS]

    def get(self, request: ArmRequest) -> ArmResponse:
        subscription = self.store.require_subscription(request.params["subscriptionId"]).id
        asked = request.params["pricingName"]
        name = next((n for n in self._names() if n.lower() == asked.lower()), None)
        if name is None:
            raise errors.ArmError(
                404, "PricingNotFound", f"The pricing '{asked}' was not found."
            )  # assumption: the code of an unknown plan name is not recorded
        return ArmResponse(200, self._render(subscription, name, request.api_version))

    def list_plans(self, request: ArmRequest) -> ArmResponse:
        subscription = self.store.require_subscription(request.params["subscriptionId"]).id
        value = [self._render(subscription, n, request.api_version) for n in self._names()]
        return ArmResponse(200, {"value": value})

    def routes(self) -> list[Route]:
        read = "Microsoft.Security/pricings/read"
        v = PRICING_API_VERSIONS
        return [
            Route("GET", _PRICINGS, "Pricings_List", v, read, self.list_plans),
            Route("GET", _PRICINGS + "/{pricingName}", "Pricings_Get", v, read, self.get),
        ]
