"""Network security rules: validation as Microsoft.Network does it, rendering, priorities.

A rule body is checked for the required fields, enum values (case-insensitively, stored in
Azure's canonical spelling), port ranges, address prefixes, the 100..4096 priority range
and the singular/plural exclusivity; a priority+direction clash with another rule of the
NSG is a ``SecurityRuleConflict``. Every NSG also carries Azure's six default rules.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from azure_arm_emulator import errors
from azure_arm_emulator.model import Nsg, SecurityRule

RULE_TYPE = "Microsoft.Network/networkSecurityGroups/securityRules"
DEFAULT_RULE_TYPE = "Microsoft.Network/networkSecurityGroups/defaultSecurityRules"
MIN_PRIORITY, MAX_PRIORITY = 100, 4096

_PROTOCOLS = {p.lower(): p for p in ("Tcp", "Udp", "Icmp", "Esp", "*", "Ah")}
_ACCESS = {a.lower(): a for a in ("Allow", "Deny")}
_DIRECTIONS = {d.lower(): d for d in ("Inbound", "Outbound")}
_PORT_RANGE = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")
_SERVICE_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9.]*$")
_PAIRS = (
    ("sourcePortRange", "sourcePortRanges"),
    ("destinationPortRange", "destinationPortRanges"),
    ("sourceAddressPrefix", "sourceAddressPrefixes"),
    ("destinationAddressPrefix", "destinationAddressPrefixes"),
)

DEFAULT_RULES: tuple[tuple[str, str, str, str, str, int, str], ...] = (
    # name, description, source, destination, access, priority, direction
    (
        "AllowVnetInBound",
        "Allow inbound traffic from all VMs in VNET",
        "VirtualNetwork",
        "VirtualNetwork",
        "Allow",
        65000,
        "Inbound",
    ),
    (
        "AllowAzureLoadBalancerInBound",
        "Allow inbound traffic from azure load balancer",
        "AzureLoadBalancer",
        "*",
        "Allow",
        65001,
        "Inbound",
    ),
    ("DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", 65500, "Inbound"),
    (
        "AllowVnetOutBound",
        "Allow outbound traffic from all VMs to all VMs in VNET",
        "VirtualNetwork",
        "VirtualNetwork",
        "Allow",
        65000,
        "Outbound",
    ),
    (
        "AllowInternetOutBound",
        "Allow outbound traffic from all VMs to Internet",
        "*",
        "Internet",
        "Allow",
        65001,
        "Outbound",
    ),
    ("DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", 65500, "Outbound"),
)


def _invalid(code: str, message: str, target: str) -> errors.ArmError:
    return errors.ArmError(400, code, message, target=target)


def validate_rule(name: str, body: object) -> dict[str, Any]:
    """Check a SecurityRule body; return its properties in canonical form."""
    if not isinstance(body, dict):
        raise errors.invalid_request_content("The security rule must be a JSON object.")
    props = body.get("properties")
    if not isinstance(props, dict):
        raise _invalid(
            "InvalidRequestFormat",
            f"Security rule {name} must have 'properties'.",
            "properties",
        )
    out: dict[str, Any] = {}
    for field_name, table in (
        ("protocol", _PROTOCOLS),
        ("access", _ACCESS),
        ("direction", _DIRECTIONS),
    ):
        value = props.get(field_name)
        if value is None:
            raise _invalid(
                "InvalidRequestFormat",
                f"Security rule {name} is missing required property '{field_name}'.",
                f"properties.{field_name}",
            )
        canonical = table.get(str(value).lower()) if isinstance(value, str) else None
        if canonical is None:
            raise _invalid(
                "SecurityRuleParameterContainsUnsupportedValue",
                f"Security rule parameter {field_name} for rule with Id {name} cannot "
                f"specify unsupported value {value!r}. Allowed values: {sorted(table.values())}.",
                f"properties.{field_name}",
            )
        out[field_name] = canonical
    priority = props.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise _invalid(
            "SecurityRuleInvalidPriority",
            f"Security rule {name} has invalid Priority. Value provided: {priority} "
            f"Allowed range {MIN_PRIORITY}-{MAX_PRIORITY}.",
            "properties.priority",
        )
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise _invalid(
            "SecurityRuleInvalidPriority",
            f"Security rule {name} has invalid Priority. Value provided: {priority} "
            f"Allowed range {MIN_PRIORITY}-{MAX_PRIORITY}.",
            "properties.priority",
        )
    out["priority"] = priority
    description = props.get("description")
    if description is not None:
        if not isinstance(description, str) or len(description) > 140:
            raise _invalid(
                "SecurityRuleDescriptionTooLong",
                f"Security rule {name} description is restricted to 140 characters.",
                "properties.description",
            )
        out["description"] = description
    for single, plural in _PAIRS:
        _pair(name, props, single, plural, out)
    return out


def _pair(name: str, props: dict[str, Any], single: str, plural: str, out: dict[str, Any]) -> None:
    one = props.get(single)
    many = props.get(plural) or []
    if not isinstance(many, list) or not all(isinstance(v, str) for v in many):
        raise _invalid(
            "InvalidRequestFormat",
            f"Security rule {name}: '{plural}' must be a list of strings.",
            f"properties.{plural}",
        )
    if one not in (None, "") and many:
        raise _invalid(
            "SecurityRuleParameterContainsUnsupportedValue",
            f"Security rule {name} cannot specify both {single} and {plural}.",
            f"properties.{plural}",
        )
    if one in (None, "") and not many:
        code = (
            "SecurityRuleInvalidPortRange"
            if "Port" in single
            else "SecurityRuleInvalidAddressPrefix"
        )
        raise _invalid(
            code,
            f"Security rule {name} has no {single} or {plural}. Value provided: .",
            f"properties.{single}",
        )
    values = many if many else [one]
    check = _check_port if "Port" in single else _check_prefix
    for value in values:
        if not isinstance(value, str) or not check(value):
            kind = "Port range" if "Port" in single else "Address prefix"
            code = (
                "SecurityRuleInvalidPortRange"
                if "Port" in single
                else "SecurityRuleInvalidAddressPrefix"
            )
            raise _invalid(
                code,
                f"Security rule {name} has invalid {kind}. Value provided: {value}.",
                f"properties.{plural if many else single}",
            )
    if many:
        out[plural] = list(many)
    else:
        out[single] = one


def _check_port(value: str) -> bool:
    if value == "*":
        return True
    match = _PORT_RANGE.match(value)
    if match is None:
        return False
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) else low
    return 0 <= low <= high <= 65535


def _check_prefix(value: str) -> bool:
    if value == "*" or _SERVICE_TAG.match(value):
        return True
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def check_conflicts(nsg: Nsg, name: str, props: dict[str, Any]) -> None:
    """SecurityRuleConflict when another rule has the same priority and direction."""
    for other in nsg.rules.values():
        if other.name.lower() == name.lower() or other.provisioning_state == "Deleting":
            continue
        if (
            other.properties.get("priority") == props["priority"]
            and other.properties.get("direction") == props["direction"]
        ):
            raise errors.ArmError(
                400,
                "SecurityRuleConflict",
                f"Security rule {name} conflicts with rule {other.name}. Rules cannot have "
                "the same Priority and Direction. To learn more, see aka.ms/nsgrules.",
            )


def free_priority(nsg: Nsg, *, direction: str, start: int, step: int) -> int:
    """The first priority from ``start`` (going by ``step``) no rule of ``direction`` uses."""
    used = {
        rule.properties.get("priority")
        for rule in nsg.rules.values()
        if rule.properties.get("direction") == direction
    }
    priority = start
    while MIN_PRIORITY <= priority <= MAX_PRIORITY:
        if priority not in used:
            return priority
        priority += step
    raise errors.ArmError(
        400,
        "SecurityRuleInvalidPriority",
        f"Network security group {nsg.name} has no free priority left for a {direction} rule.",
    )


def render_rule(nsg: Nsg, rule: SecurityRule) -> dict[str, Any]:
    props: dict[str, Any] = {"provisioningState": rule.provisioning_state}
    props.update(rule.properties)
    for _, plural in _PAIRS:
        props.setdefault(plural, [])
    return {
        "name": rule.name,
        "id": f"{nsg.id}/securityRules/{rule.name}",
        "etag": rule.etag,
        "type": RULE_TYPE,
        "properties": props,
    }


def render_default_rules(nsg: Nsg) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "id": f"{nsg.id}/defaultSecurityRules/{name}",
            "etag": nsg.etag,
            "type": DEFAULT_RULE_TYPE,
            "properties": {
                "provisioningState": "Succeeded",
                "description": description,
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": source,
                "destinationAddressPrefix": destination,
                "access": access,
                "priority": priority,
                "direction": direction,
                "sourcePortRanges": [],
                "destinationPortRanges": [],
                "sourceAddressPrefixes": [],
                "destinationAddressPrefixes": [],
            },
        }
        for name, description, source, destination, access, priority, direction in DEFAULT_RULES
    ]
