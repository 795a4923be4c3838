"""What a JitPolicy governs exclusively: its Azure policy, and each of its VMs.

Two JitPolicies must never write the same Azure policy or include the same VM (each PUT
would undo the other). Keys are case-folded, as ARM treats names.
"""

from __future__ import annotations

from azure_jit_operator.domain.azure_policy import desired_policy
from azure_jit_operator.domain.specs import JitPolicySpec


def governance_keys(spec: JitPolicySpec) -> list[tuple[str, str]]:
    """(description, key) pairs; the description names the thing for conflict messages."""
    target = spec.azure
    policy_key = "/".join(
        (target.subscription_id, target.resource_group, target.location, target.policy_name)
    ).lower()
    return [("azure policy " + policy_key, policy_key)] + [
        ("virtual machine " + vm_id.rsplit("/", 1)[-1], vm_id)
        for vm_id in sorted(desired_policy(spec).vm_ids())
    ]
