"""Whether a JitAccessRequest may open what it asks for, judged against its JitPolicy.

Every denial names the rule, the offending value and what would be allowed, so the user
can fix the request from the message alone. The same texts are used by the operator's
status and (later) by the admission webhook, so GitOps users see identical wording.
"""

from __future__ import annotations

from dataclasses import dataclass

from .durations import format_kube_duration
from .prefixes import contained_in_any
from .specs import JitAccessRequestSpec, JitPolicySpec


@dataclass(frozen=True, slots=True)
class Denial:
    """A reason (CamelCase, for conditions and Events) and a sentence for humans."""

    reason: str
    message: str


POLICY_NOT_FOUND = "PolicyNotFound"
VM_NOT_IN_POLICY = "VirtualMachineNotInPolicy"
PORT_NOT_IN_POLICY = "PortNotInPolicy"
SOURCE_NOT_ALLOWED = "SourcePrefixNotAllowed"
DURATION_TOO_LONG = "DurationExceedsMaximum"


def policy_not_found(policy_name: str, namespace: str) -> Denial:
    return Denial(
        POLICY_NOT_FOUND,
        f"JitPolicy {policy_name!r} does not exist in namespace {namespace!r}; "
        "set spec.policyName to a JitPolicy of this namespace (kubectl get jitpolicies)",
    )


def check_request(
    request: JitAccessRequestSpec, policy: JitPolicySpec, *, policy_name: str
) -> Denial | None:
    """The first rule the request breaks, or None when the policy allows all of it."""
    vm = policy.virtual_machine(request.virtual_machine)
    if vm is None:
        governed = ", ".join(sorted(v.name for v in policy.virtual_machines))
        return Denial(
            VM_NOT_IN_POLICY,
            f"virtual machine {request.virtual_machine!r} is not governed by JitPolicy "
            f"{policy_name!r}; it governs: {governed}",
        )
    for port in request.ports:
        rule = vm.port(port.number)
        if rule is None:
            allowed = ", ".join(str(p.number) for p in sorted(vm.ports, key=lambda p: p.number))
            return Denial(
                PORT_NOT_IN_POLICY,
                f"port {port.number} is not JIT-enabled on {vm.name} by JitPolicy "
                f"{policy_name!r}; allowed ports: {allowed}",
            )
        if not contained_in_any(port.source_prefix, rule.allowed_source_prefixes):
            allowed = ", ".join(p.text for p in rule.allowed_source_prefixes)
            return Denial(
                SOURCE_NOT_ALLOWED,
                f"source {port.source_prefix.text} is not inside the prefixes allowed for "
                f"port {port.number} on {vm.name}: {allowed}",
            )
        if request.duration > rule.max_request_access_duration:
            return Denial(
                DURATION_TOO_LONG,
                f"duration {format_kube_duration(request.duration)} exceeds the maximum "
                f"{format_kube_duration(rule.max_request_access_duration)} allowed for port "
                f"{port.number} on {vm.name}",
            )
    return None
