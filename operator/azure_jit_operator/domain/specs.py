"""Typed models of the two custom resources' specs, parsed from their dict form.

The CRD schema already rejects most bad input at admission; parsing here repeats the
checks the operator relies on, because a CRD can be older than the operator (or edited),
and an invalid spec must end in a clear condition rather than a stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

from azure_jit_operator.domain.approvals import ApprovalMode, ApprovalPolicy, Requester
from azure_jit_operator.domain.durations import DurationError, parse_kube_duration
from azure_jit_operator.domain.notify import NotifySpecError, parse_notify
from azure_jit_operator.domain.prefixes import ANY, PrefixError, SourcePrefix, parse_azure_source

MIN_MAX_ACCESS = timedelta(minutes=5)
MAX_MAX_ACCESS = timedelta(hours=24)
MIN_REQUEST_DURATION = timedelta(minutes=1)
MAX_REQUEST_DURATION = timedelta(hours=24)
MIN_EMERGENCY_JUSTIFICATION = 10


class SpecError(ValueError):
    """An invalid spec. ``field`` is the path users see in ``kubectl explain`` terms."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    ANY = "*"


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    ORPHAN = "Orphan"


@dataclass(frozen=True, slots=True)
class PortRule:
    """One JIT-protected port of a VM, as a JitPolicy declares it."""

    number: int
    protocol: Protocol
    allowed_source_prefixes: tuple[SourcePrefix, ...]
    max_request_access_duration: timedelta


@dataclass(frozen=True, slots=True)
class VirtualMachineRule:
    name: str
    ports: tuple[PortRule, ...]

    def port(self, number: int) -> PortRule | None:
        return next((p for p in self.ports if p.number == number), None)


@dataclass(frozen=True, slots=True)
class AzureTarget:
    subscription_id: str
    resource_group: str
    location: str
    policy_name: str


@dataclass(frozen=True, slots=True)
class VmSelector:
    """VMs chosen by rule rather than by name: all of the resource group, or by tags."""

    match_tags: tuple[tuple[str, str], ...]
    select_all: bool
    ports: tuple[PortRule, ...]

    def matches(self, tags: Mapping[str, str]) -> bool:
        if self.select_all:
            return True
        # Azure tag names are case-insensitive; values are not.
        folded = {k.lower(): v for k, v in tags.items()}
        return all(folded.get(name.lower()) == value for name, value in self.match_tags)


@dataclass(frozen=True, slots=True)
class BreakGlassPolicy:
    """``spec.breakGlass``: emergency requests may open without approval, this long at most."""

    max_duration: timedelta


@dataclass(frozen=True, slots=True)
class JitPolicySpec:
    azure: AzureTarget
    virtual_machines: tuple[VirtualMachineRule, ...]
    deletion_policy: DeletionPolicy
    selector: VmSelector | None = None
    adopt: bool = False
    approval: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    break_glass: BreakGlassPolicy | None = None

    def virtual_machine(self, name: str) -> VirtualMachineRule | None:
        # Azure resource names are case-insensitive.
        wanted = name.lower()
        return next((vm for vm in self.virtual_machines if vm.name.lower() == wanted), None)

    def with_selected(self, names: Sequence[str]) -> JitPolicySpec:
        """The spec with the selector's VMs added (explicitly listed VMs keep their ports)."""
        if self.selector is None:
            return self
        listed = {vm.name.lower() for vm in self.virtual_machines}
        selected = tuple(
            VirtualMachineRule(name=name, ports=self.selector.ports)
            for name in sorted(names, key=str.lower)
            if name.lower() not in listed
        )
        return replace(self, virtual_machines=self.virtual_machines + selected)


@dataclass(frozen=True, slots=True)
class RequestedPort:
    number: int
    source_prefix: SourcePrefix


@dataclass(frozen=True, slots=True)
class JitAccessRequestSpec:
    policy_name: str
    virtual_machine: str
    ports: tuple[RequestedPort, ...]
    duration: timedelta
    justification: str
    requester: Requester | None = None
    extends: str = ""  # the request this one extends (a follow-on sharing its port)
    emergency: bool = False  # break-glass: opens without approval, then needs a review


def parse_policy_spec(spec: Mapping[str, Any], *, name: str) -> JitPolicySpec:
    """Parse a JitPolicy ``spec``; ``name`` (metadata.name) is the default Azure policy name."""
    azure = _mapping(spec, "azure", "spec.azure")
    target = AzureTarget(
        subscription_id=_string(azure, "subscriptionId", "spec.azure.subscriptionId"),
        resource_group=_string(azure, "resourceGroup", "spec.azure.resourceGroup"),
        location=_string(azure, "location", "spec.azure.location"),
        policy_name=str(azure.get("policyName") or name),
    )
    selector = _parse_selector(spec["vmSelector"]) if spec.get("vmSelector") else None
    vms = (
        _sequence(spec, "virtualMachines", "spec.virtualMachines")
        if selector is None or "virtualMachines" in spec
        else ()
    )
    rules = tuple(
        _parse_vm(_as_mapping(vm, f"spec.virtualMachines[{i}]"), f"spec.virtualMachines[{i}]")
        for i, vm in enumerate(vms)
    )
    _require_unique(
        [vm.name.lower() for vm in rules], "spec.virtualMachines", "virtual machine names"
    )
    raw_policy = spec.get("deletionPolicy", DeletionPolicy.DELETE.value)
    try:
        deletion_policy = DeletionPolicy(raw_policy)
    except ValueError:
        raise SpecError("spec.deletionPolicy", "must be Delete or Orphan") from None
    return JitPolicySpec(
        azure=target,
        virtual_machines=rules,
        deletion_policy=deletion_policy,
        selector=selector,
        adopt=azure.get("adopt") is True,
        approval=_parse_approval(spec.get("approval")),
        break_glass=_parse_break_glass(spec.get("breakGlass")),
    )


def _parse_break_glass(raw: object) -> BreakGlassPolicy | None:
    if raw is None:
        return None
    body = _as_mapping(raw, "spec.breakGlass")
    limit = _duration(body, "maxDuration", "spec.breakGlass.maxDuration")
    if not MIN_REQUEST_DURATION <= limit <= MAX_REQUEST_DURATION:
        raise SpecError("spec.breakGlass.maxDuration", "must lie between 1m and 24h")
    return BreakGlassPolicy(max_duration=limit)


def _parse_approval(raw: object) -> ApprovalPolicy:
    if not raw:
        return ApprovalPolicy()
    approval = _as_mapping(raw, "spec.approval")
    try:
        mode = ApprovalMode(approval.get("mode", ApprovalMode.AUTOMATIC.value))
    except ValueError:
        raise SpecError("spec.approval.mode", "must be Automatic or Manual") from None
    required = approval.get("requiredApprovals", 1)
    if isinstance(required, bool) or not isinstance(required, int) or not 1 <= required <= 5:
        raise SpecError("spec.approval.requiredApprovals", "must be a number from 1 to 5")
    timeout = (
        _duration(approval, "timeout", "spec.approval.timeout")
        if "timeout" in approval
        else ApprovalPolicy().timeout
    )
    if not timedelta(minutes=1) <= timeout <= timedelta(hours=168):
        raise SpecError("spec.approval.timeout", "must lie between 1m and 168h")
    try:
        notify = parse_notify(approval.get("notify"))
    except NotifySpecError as exc:
        raise SpecError("spec.approval.notify", str(exc)) from None
    return ApprovalPolicy(mode=mode, required=required, timeout=timeout, notify=notify)


def _parse_selector(raw: object) -> VmSelector:
    selector = _as_mapping(raw, "spec.vmSelector")
    tags = selector.get("matchTags") or {}
    if not isinstance(tags, Mapping):
        raise SpecError("spec.vmSelector.matchTags", "must be a map of tag names to values")
    select_all = selector.get("all") is True
    if bool(tags) == select_all:
        raise SpecError(
            "spec.vmSelector",
            "set exactly one of matchTags (VMs carrying all these tags) or all: true "
            "(every VM of the resource group)",
        )
    ports = tuple(
        _parse_port_rule(
            _as_mapping(p, f"spec.vmSelector.ports[{i}]"), f"spec.vmSelector.ports[{i}]"
        )
        for i, p in enumerate(_sequence(selector, "ports", "spec.vmSelector.ports"))
    )
    _require_unique([p.number for p in ports], "spec.vmSelector.ports", "port numbers")
    return VmSelector(
        match_tags=tuple(sorted((str(k), str(v)) for k, v in tags.items())),
        select_all=select_all,
        ports=ports,
    )


def _parse_vm(vm: Mapping[str, Any], path: str) -> VirtualMachineRule:
    name = _string(vm, "name", f"{path}.name")
    ports = tuple(
        _parse_port_rule(_as_mapping(p, f"{path}.ports[{i}]"), f"{path}.ports[{i}]")
        for i, p in enumerate(_sequence(vm, "ports", f"{path}.ports"))
    )
    _require_unique([p.number for p in ports], f"{path}.ports", "port numbers")
    return VirtualMachineRule(name=name, ports=ports)


def _parse_port_rule(port: Mapping[str, Any], path: str) -> PortRule:
    number = _port_number(port, f"{path}.number")
    try:
        protocol = Protocol(port.get("protocol", Protocol.TCP.value))
    except ValueError:
        raise SpecError(f"{path}.protocol", "must be TCP, UDP or *") from None
    raw_prefixes = _sequence(
        port, "allowedSourceAddressPrefixes", f"{path}.allowedSourceAddressPrefixes"
    )
    prefixes = tuple(
        _prefix(str(p), f"{path}.allowedSourceAddressPrefixes[{i}]")
        for i, p in enumerate(raw_prefixes)
    )
    if len(prefixes) > 1 and any(p.is_any for p in prefixes):
        raise SpecError(
            f"{path}.allowedSourceAddressPrefixes",
            "'*' already allows every source; list it alone or list specific prefixes",
        )
    max_access = _duration(port, "maxRequestAccessDuration", f"{path}.maxRequestAccessDuration")
    if not MIN_MAX_ACCESS <= max_access <= MAX_MAX_ACCESS:
        raise SpecError(
            f"{path}.maxRequestAccessDuration",
            "must lie between 5m and 24h (Azure's limits for JIT access)",
        )
    return PortRule(
        number=number,
        protocol=protocol,
        allowed_source_prefixes=prefixes,
        max_request_access_duration=max_access,
    )


def parse_request_spec(spec: Mapping[str, Any]) -> JitAccessRequestSpec:
    """Parse a JitAccessRequest ``spec``."""
    ports: list[RequestedPort] = []
    for i, raw in enumerate(_sequence(spec, "ports", "spec.ports")):
        port = _as_mapping(raw, f"spec.ports[{i}]")
        ports.append(
            RequestedPort(
                number=_port_number(port, f"spec.ports[{i}].number"),
                source_prefix=_prefix(
                    _string(port, "sourceAddressPrefix", f"spec.ports[{i}].sourceAddressPrefix"),
                    f"spec.ports[{i}].sourceAddressPrefix",
                ),
            )
        )
    _require_unique([p.number for p in ports], "spec.ports", "port numbers")
    duration = _duration(spec, "duration", "spec.duration")
    if not MIN_REQUEST_DURATION <= duration <= MAX_REQUEST_DURATION:
        raise SpecError("spec.duration", "must lie between 1m and 24h")
    return JitAccessRequestSpec(
        policy_name=_string(spec, "policyName", "spec.policyName"),
        virtual_machine=_string(spec, "virtualMachine", "spec.virtualMachine"),
        ports=tuple(ports),
        duration=duration,
        justification=str(spec.get("justification", "")),
        requester=Requester.from_dict(spec.get("requester")),
        extends=_optional_string(spec, "extends", "spec.extends"),
        emergency=_emergency(spec),
    )


def _optional_string(parent: Mapping[str, Any], key: str, path: str) -> str:
    value = parent.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or not value:
        raise SpecError(path, "must be a non-empty string when set")
    return value


def _emergency(spec: Mapping[str, Any]) -> bool:
    value = spec.get("emergency", False)
    if not isinstance(value, bool):
        raise SpecError("spec.emergency", "must be true or false")
    if value and spec.get("extends"):
        raise SpecError(
            "spec.emergency",
            "an emergency request cannot extend another; create a new emergency request",
        )
    if value and len(str(spec.get("justification", "")).strip()) < MIN_EMERGENCY_JUSTIFICATION:
        raise SpecError(
            "spec.justification",
            f"an emergency request needs a justification of at least "
            f"{MIN_EMERGENCY_JUSTIFICATION} characters saying what the emergency is "
            "(e.g. the incident id)",
        )
    return value


def _mapping(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    if key not in parent:
        raise SpecError(path, "is required")
    return _as_mapping(parent[key], path)


def _as_mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(path, "must be an object")
    return value


def _sequence(parent: Mapping[str, Any], key: str, path: str) -> Sequence[Any]:
    value = parent.get(key)
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise SpecError(path, "must be a non-empty list")
    return value


def _string(parent: Mapping[str, Any], key: str, path: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise SpecError(path, "is required and must be a non-empty string")
    return value


def _port_number(parent: Mapping[str, Any], path: str) -> int:
    value = parent.get("number")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise SpecError(path, "must be a port number between 1 and 65535")
    return value


def _prefix(text: str, path: str) -> SourcePrefix:
    try:
        return parse_azure_source(text)
    except PrefixError as exc:
        raise SpecError(path, str(exc)) from None


def _duration(parent: Mapping[str, Any], key: str, path: str) -> timedelta:
    value = parent.get(key)
    if not isinstance(value, str):
        raise SpecError(path, "is required, e.g. 1h or 90m")
    try:
        return parse_kube_duration(value)
    except DurationError as exc:
        raise SpecError(path, str(exc)) from None


def _require_unique(values: Sequence[object], path: str, what: str) -> None:
    seen: set[object] = set()
    for value in values:
        if value in seen:
            raise SpecError(path, f"{what} must be unique; {value} appears more than once")
        seen.add(value)


__all__ = [
    "ANY",
    "AzureTarget",
    "BreakGlassPolicy",
    "DeletionPolicy",
    "JitAccessRequestSpec",
    "JitPolicySpec",
    "PortRule",
    "Protocol",
    "RequestedPort",
    "SpecError",
    "VirtualMachineRule",
    "VmSelector",
    "parse_policy_spec",
    "parse_request_spec",
]
