"""Limits Azure JIT enforces only by failing, checked before anything is sent to it.

E13: the NSG rule descriptions JIT writes hold the policy name and the VM name, and JIT fails
when a description would exceed 140 characters, which happens when the policy name and the VM
name are together longer than 56 characters. The JitPolicy CRD refuses listed VMs at admission
(a CEL rule with the same wording); VMs chosen by ``vmSelector`` are only known at reconcile,
so the operator checks them with ``name_limit_violations``.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_POLICY_AND_VM_NAME = 56


def name_limit_violations(policy_name: str, vm_names: Iterable[str]) -> list[str]:
    """One sentence per VM whose name, with ``policy_name``, is longer than Azure JIT allows.

    ``policy_name`` is the Azure policy name (``spec.azure.policyName``, else the JitPolicy's
    ``metadata.name``). Empty when every VM fits; VMs are reported in the order given.
    """
    return [
        f"virtual machine {vm!r} ({len(vm)} characters) and Azure policy name "
        f"{policy_name!r} ({len(policy_name)} characters) are {len(vm) + len(policy_name)} "
        f"characters together; Azure JIT allows at most {MAX_POLICY_AND_VM_NAME} (the NSG "
        "rule descriptions it writes would exceed 140 characters): use a shorter VM name or "
        "a new JitPolicy with a shorter spec.azure.policyName"
        for vm in vm_names
        if len(vm) + len(policy_name) > MAX_POLICY_AND_VM_NAME
    ]
