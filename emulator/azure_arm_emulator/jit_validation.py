"""What Microsoft.Security checks in JIT policy and initiate bodies.

Policies: every VM exists (same subscription) and is guarded by an NSG; ports are 0..65535
and unique per VM; protocol is ``TCP``/``UDP``/``*``; ``maxRequestAccessDuration`` is an ISO
8601 duration between 5 minutes and 1 day; exactly one of ``allowedSourceAddressPrefix`` /
``allowedSourceAddressPrefixes`` holds valid prefixes. Initiate: the body is well formed
(exactly one of ``endTimeUtc`` and ``duration``, as the service accepts both), then against
the policy: VM and port are in it, the end lies in the future and no further than the
port's maximum, and the source prefix lies inside the allowed ones.
Failures are 400s with code ``InvalidPolicyInput`` / ``InvalidInitiateInput`` and a
``target`` naming the offending property.

What real Azure was seen answering (``docs/azure-fidelity.md``): the initiate body is checked
before the policy is looked up, neither or both of ``endTimeUtc``/``duration`` is
"Only one of fields 'EndTimeUtc' and 'Duration' can be set." (E8); anything outside the
policy (VM, port, duration, source) gets one generic "not a subset of policy" message (E14;
its status and code are an assumption, U5); IPv6 sources are refused (E14); a policy port
with ``protocol: ""`` is a 500 (E14); policy name + VM name may be at most 56 characters and
a rule description at most 140 (E13; status and code are an assumption).
Prefixes and durations are read by the emulator's own :mod:`.jit_prefixes` and
:mod:`.jit_durations`, not by the operator's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure_arm_emulator import errors, ids, jit_rule_names
from azure_arm_emulator.clock import parse_timestamp
from azure_arm_emulator.jit_durations import JitDurationError, parse_duration
from azure_arm_emulator.jit_prefixes import SourcePrefixError, parse_source, within
from azure_arm_emulator.model import JitPolicy, JitPolicyVm, JitPortRule
from azure_arm_emulator.store import Store

MIN_ACCESS = timedelta(minutes=5)
MAX_ACCESS = timedelta(days=1)
_PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "*": "*"}
MAX_POLICY_AND_VM_NAME = 56  # E13
MAX_RULE_DESCRIPTION = 140  # E13


def policy_error(message: str, target: str) -> errors.ArmError:
    return errors.ArmError(400, "InvalidPolicyInput", message, target=target)


def initiate_error(message: str, target: str | None = None) -> errors.ArmError:
    return errors.ArmError(400, "InvalidInitiateInput", message, target=target)


def not_a_subset(policy: JitPolicy, target: str) -> errors.ArmError:
    """Azure's one message for any initiate outside the policy (E14); 400
    ``InvalidInitiateInput`` is an assumption (U5). The target is the emulator's help."""
    return initiate_error(
        f"The given access request is not a subset of policy '{policy.id}'. Please make sure "
        "that the access request is within the allowed policy properties.",
        target,
    )


def jit_internal_error() -> errors.ArmError:
    """What a policy PUT with ``protocol: ""`` got from Azure (E14): a bare 500."""
    return errors.ArmError(500, "InternalServerError", "Internal server error has occurred.")


# --------------------------------------------------------------------------- policy bodies


def parse_policy(
    body: dict[str, Any], *, store: Store, subscription: str, name: str
) -> tuple[str | None, list[JitPolicyVm]]:
    """``(kind, virtualMachines)`` of a CreateOrUpdate body, or an ARM 400."""
    kind = body.get("kind", "Basic")
    if kind is not None and not isinstance(kind, str):
        raise policy_error("'kind' must be a string.", "kind")
    props = body.get("properties")
    if not isinstance(props, dict):
        raise policy_error("The policy must have 'properties'.", "properties")
    vms = props.get("virtualMachines")
    if not isinstance(vms, list):
        raise policy_error(
            "'properties.virtualMachines' is required and must be a list.",
            "properties.virtualMachines",
        )
    parsed: list[JitPolicyVm] = []
    seen: set[str] = set()
    for index, item in enumerate(vms):
        target = f"properties.virtualMachines[{index}]"
        vm = _policy_vm(item, target, store=store, subscription=subscription)
        _check_name_lengths(name, vm.id, target)
        if ids.key(vm.id) in seen:
            raise policy_error(f"Virtual machine '{vm.id}' appears more than once.", target)
        seen.add(ids.key(vm.id))
        parsed.append(vm)
    return kind, parsed


def _check_name_lengths(policy_name: str, vm_id: str, target: str) -> None:
    """E13: the documented 56-character limit and the 140-character rule description."""
    vm_name = vm_id.rstrip("/").rsplit("/", 1)[-1]
    if len(policy_name) + len(vm_name) > MAX_POLICY_AND_VM_NAME:
        raise policy_error(
            f"The policy name '{policy_name}' and the virtual machine name '{vm_name}' "
            f"together exceed {MAX_POLICY_AND_VM_NAME} characters.",
            f"{target}.id",
        )
    longest = max(
        len(describe(generation, policy_name, vm_name))
        for generation in (jit_rule_names.CURRENT, jit_rule_names.LEGACY)
        for describe in (jit_rule_names.allow_description, jit_rule_names.deny_description)
    )
    if longest > MAX_RULE_DESCRIPTION:
        raise policy_error(
            f"The network security rule description for policy '{policy_name}' of virtual "
            f"machine '{vm_name}' would exceed {MAX_RULE_DESCRIPTION} characters.",
            f"{target}.id",
        )


def _policy_vm(item: object, target: str, *, store: Store, subscription: str) -> JitPolicyVm:
    if not isinstance(item, dict):
        raise policy_error("Each virtual machine must be an object.", target)
    vm_id = item.get("id")
    parsed = ids.parse(vm_id) if isinstance(vm_id, str) else None
    if parsed is None or not parsed.is_type("Microsoft.Compute", "virtualMachines"):
        raise policy_error(f"'{vm_id}' is not a virtual machine resource id.", f"{target}.id")
    assert isinstance(vm_id, str)
    if parsed.subscription.lower() != subscription.lower():
        raise policy_error(
            f"Virtual machine '{vm_id}' is not in subscription '{subscription}'.", f"{target}.id"
        )
    vm = store.vm_by_id(vm_id)
    if vm is None:
        raise policy_error(f"Virtual machine '{vm_id}' was not found.", f"{target}.id")
    if not store.guards(vm):
        raise policy_error(
            f"Virtual machine '{vm_id}' is not protected by a network security group; "
            "Just-in-time VM access needs one on its network interface or subnet.",
            f"{target}.id",
        )
    ports = item.get("ports")
    if not isinstance(ports, list) or not ports:
        raise policy_error(
            "Each virtual machine needs a non-empty 'ports' list.", f"{target}.ports"
        )
    rules: list[JitPortRule] = []
    for index, port in enumerate(ports):
        rule = _port_rule(port, f"{target}.ports[{index}]")
        if any(existing.number == rule.number for existing in rules):
            raise policy_error(
                f"Port {rule.number} appears more than once.", f"{target}.ports[{index}].number"
            )
        rules.append(rule)
    public_ip = item.get("publicIpAddress")
    return JitPolicyVm(
        id=vm_id,
        ports=rules,
        public_ip_address=public_ip if isinstance(public_ip, str) else None,
    )


def _port_number(value: object, target: str, error: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise error(f"Port number {value!r} must be an integer between 0 and 65535.", target)
    return value


def _port_rule(port: object, target: str) -> JitPortRule:
    if not isinstance(port, dict):
        raise policy_error("Each port must be an object.", target)
    number = _port_number(port.get("number"), f"{target}.number", policy_error)
    protocol = port.get("protocol")
    if protocol == "":
        raise jit_internal_error()
    canonical = _PROTOCOLS.get(protocol.lower()) if isinstance(protocol, str) else None
    if canonical is None:
        raise policy_error(
            f"Protocol {protocol!r} is not supported; use 'TCP', 'UDP' or '*'.",
            f"{target}.protocol",
        )
    duration_text = port.get("maxRequestAccessDuration")
    if not isinstance(duration_text, str):
        raise policy_error(
            "'maxRequestAccessDuration' is required (ISO 8601, for example PT3H).",
            f"{target}.maxRequestAccessDuration",
        )
    try:
        duration = parse_duration(duration_text)
    except JitDurationError as exc:
        raise policy_error(str(exc), f"{target}.maxRequestAccessDuration") from None
    if not MIN_ACCESS <= duration <= MAX_ACCESS:
        raise policy_error(
            f"maxRequestAccessDuration '{duration_text}' must be between 5 minutes (PT5M) "
            "and 1 day (P1D).",
            f"{target}.maxRequestAccessDuration",
        )
    single, many = _prefixes(port, target, policy_error, required=True)
    return JitPortRule(
        number=number,
        protocol=canonical,
        max_duration=duration,
        allowed_prefix=single,
        allowed_prefixes=many,
    )


def _prefixes(
    item: dict[str, Any], target: str, error: Any, *, required: bool
) -> tuple[str | None, list[str] | None]:
    single = item.get("allowedSourceAddressPrefix")
    many = item.get("allowedSourceAddressPrefixes")
    if single is not None and many is not None:
        raise error(
            "'allowedSourceAddressPrefix' and 'allowedSourceAddressPrefixes' are mutually "
            "exclusive; set only one of them.",
            f"{target}.allowedSourceAddressPrefixes",
        )
    if single is None and many is None:
        if required:
            raise error(
                "One of 'allowedSourceAddressPrefix' or 'allowedSourceAddressPrefixes' is "
                "required.",
                f"{target}.allowedSourceAddressPrefix",
            )
        return None, None
    if single is not None:
        if not isinstance(single, str):
            raise error("'allowedSourceAddressPrefix' must be a string.", target)
        _check_prefix(single, f"{target}.allowedSourceAddressPrefix", error)
        return single, None
    if not isinstance(many, list) or not many or not all(isinstance(p, str) for p in many):
        raise error(
            "'allowedSourceAddressPrefixes' must be a non-empty list of strings.",
            f"{target}.allowedSourceAddressPrefixes",
        )
    for index, prefix in enumerate(many):
        _check_prefix(prefix, f"{target}.allowedSourceAddressPrefixes[{index}]", error)
    return None, list(many)


def _check_prefix(text: str, target: str, error: Any) -> None:
    try:
        parse_source(text)
    except SourcePrefixError as exc:
        raise error(str(exc), target) from None


# --------------------------------------------------------------------------- initiate bodies


@dataclass
class InitiatePort:
    number: int
    end_time: datetime | None
    duration: timedelta | None
    allowed_prefix: str | None
    allowed_prefixes: list[str] | None
    target: str
    end_text: str | None = None  # endTimeUtc as sent, echoed back (E7)


@dataclass
class InitiateVm:
    id: str
    ports: list[InitiatePort]
    target: str


@dataclass
class InitiateBody:
    virtual_machines: list[InitiateVm]
    justification: str | None


def parse_initiate(body: dict[str, Any]) -> InitiateBody:
    vms = body.get("virtualMachines")
    if not isinstance(vms, list) or not vms:
        raise initiate_error(
            "'virtualMachines' is required and must not be empty.", "virtualMachines"
        )
    justification = body.get("justification")
    if justification is not None and not isinstance(justification, str):
        raise initiate_error("'justification' must be a string.", "justification")
    parsed: list[InitiateVm] = []
    for index, item in enumerate(vms):
        target = f"virtualMachines[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise initiate_error("Each virtual machine needs an 'id'.", f"{target}.id")
        ports = item.get("ports")
        if not isinstance(ports, list) or not ports:
            raise initiate_error("Each virtual machine needs a non-empty 'ports' list.", target)
        parsed.append(
            InitiateVm(
                id=item["id"],
                ports=[_initiate_port(p, f"{target}.ports[{i}]") for i, p in enumerate(ports)],
                target=target,
            )
        )
    return InitiateBody(virtual_machines=parsed, justification=justification)


def _initiate_port(port: object, target: str) -> InitiatePort:
    if not isinstance(port, dict):
        raise initiate_error("Each port must be an object.", target)
    number = _port_number(port.get("number"), f"{target}.number", initiate_error)
    end_text, duration_text = port.get("endTimeUtc"), port.get("duration")
    if (end_text is None) == (duration_text is None):
        raise initiate_error("Only one of fields 'EndTimeUtc' and 'Duration' can be set.", target)
    end_time = duration = None
    try:
        if end_text is not None:
            if not isinstance(end_text, str):
                raise ValueError(end_text)
            end_time = parse_timestamp(end_text)
        elif isinstance(duration_text, str):
            duration = parse_duration(duration_text)
        else:
            raise ValueError(duration_text)
    except ValueError:  # JitDurationError included
        field, value = (
            ("endTimeUtc", end_text) if end_text is not None else ("duration", duration_text)
        )
        raise initiate_error(
            f"'{field}' value {value!r} is not valid.", f"{target}.{field}"
        ) from None
    single, many = _prefixes(port, target, initiate_error, required=False)
    sent = end_text if isinstance(end_text, str) else None
    return InitiatePort(number, end_time, duration, single, many, target, sent)


def check_initiate_port(
    *,
    policy: JitPolicy,
    policy_vm: JitPolicyVm,
    port: InitiatePort,
    now: datetime,
    caller_ip: str | None,
    exact_sources: bool = False,
) -> tuple[JitPortRule, datetime, str | None, list[str] | None]:
    """Check one requested port against the policy; ``(rule, end, prefix, prefixes)``.

    ``exact_sources``: a source must be one of the allowed prefixes as written (U6)."""
    rule = next((r for r in policy_vm.ports if r.number == port.number), None)
    if rule is None:
        raise not_a_subset(policy, f"{port.target}.number")
    end = port.end_time if port.end_time is not None else now + (port.duration or timedelta(0))
    if end <= now:
        raise initiate_error(
            f"The requested end time {end.isoformat()} is not in the future.",
            f"{port.target}.endTimeUtc",
        )
    if end - now > rule.max_duration:
        raise not_a_subset(policy, f"{port.target}.endTimeUtc")
    single, many = port.allowed_prefix, port.allowed_prefixes
    if single is None and many is None:
        if caller_ip is None:
            raise initiate_error(
                "'allowedSourceAddressPrefix' is required: the caller's address is unknown.",
                port.target,
            )
        single = caller_ip
    for text in [single] if single is not None else list(many or []):
        try:
            inside = within(text, rule.allowed())
        except SourcePrefixError as exc:  # the caller's own address may be IPv6
            raise initiate_error(str(exc), f"{port.target}.allowedSourceAddressPrefix") from None
        if not inside or (exact_sources and text not in rule.allowed()):
            raise not_a_subset(policy, f"{port.target}.allowedSourceAddressPrefix")
    return rule, end, single, many
