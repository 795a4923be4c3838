"""Azure JIT needs Microsoft Defender for Servers Plan 2 on the VM's subscription (E12:
pricing ``VirtualMachines`` with tier ``Standard`` and sub-plan ``P2``). Said clearly
before the first write, rather than as whatever error Azure gives a subscription without it
(unshown, U5)."""

from __future__ import annotations

from dataclasses import dataclass

PRICING_NAME = "VirtualMachines"


@dataclass(frozen=True, slots=True)
class ServersPlan:
    pricing_tier: str  # Standard | Free
    sub_plan: str  # P1 | P2 | "" (older api-versions have no sub-plan)


def plan_problem(subscription_id: str, plan: ServersPlan) -> str | None:
    """Why JIT cannot work on this subscription, with how to fix it; None when it can."""
    tier, sub_plan = plan.pricing_tier.lower(), plan.sub_plan.upper()
    if tier == "standard" and sub_plan in ("P2", ""):
        return None
    what = "is off (pricing tier Free)" if tier != "standard" else f"is Plan {sub_plan[-1:]}"
    return (
        f"Microsoft Defender for Servers {what} on subscription {subscription_id}; Azure JIT "
        "VM access needs Defender for Servers Plan 2. Enable it in Defender for Cloud > "
        "Environment settings, or: az security pricing create -n VirtualMachines --tier "
        "standard --subplan P2"
    )
