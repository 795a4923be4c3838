"""Whether each JIT-protected VM port is closed to everything but JIT grants, from the NSG
rules actually there: ``Protected``, ``Exposed`` (another rule admits some source) or
``Unprotected`` (JIT's own deny rule is gone, e.g. wiped by an IaC apply; E4).

Pure: the reads are the caller's; :func:`domain.exposure.port_exposure` evaluates the rules
as Azure does. What a person needs to act on (which rule, on which NSG, admits which sources)
is in every entry, and the status keeps only the ports that are not Protected, so a policy
over a thousand VMs does not write a thousand entries each drift check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from azure_jit_operator.domain.exposure import Admission, PortExposure, RuleRef, Scope
from azure_jit_operator.domain.exposure import port_exposure as evaluate_port
from azure_jit_operator.domain.nsg import SecurityRuleView, VmNetwork, jit_deny_rules

# Ports listed in the status (and named in messages) at most; the counts cover the rest.
MAX_LISTED = 50
MAX_NAMED = 3


class Protection(StrEnum):
    PROTECTED = "Protected"
    EXPOSED = "Exposed"
    UNPROTECTED = "Unprotected"


@dataclass(frozen=True, slots=True)
class PortProtection:
    vm: str
    port: int
    protocol: str
    deny_missing: bool
    exposure: PortExposure

    @property
    def state(self) -> Protection:
        if self.deny_missing:
            return Protection.UNPROTECTED
        return Protection.EXPOSED if self.exposure.exposed else Protection.PROTECTED

    @property
    def internet(self) -> bool:
        return self.exposure.internet

    @property
    def key(self) -> str:
        return f"{self.vm}/{self.port}/{self.protocol}"

    def describe(self) -> str:
        """One line a person can act on: what admits whom, where."""
        where = f"{self.vm} port {self.port}/{self.protocol}"
        parts = []
        if self.deny_missing:
            parts.append("JIT's deny rule is missing from the VM's NSGs")
        if self.exposure.exposed:
            parts.append("reachable without a JIT grant " + _admissions_text(self.exposure))
        return f"{where}: " + "; ".join(parts) if parts else f"{where}: protected"


def port_protection(
    vm: str,
    network: VmNetwork,
    rules_by_nsg: Mapping[str, Sequence[SecurityRuleView]],
    *,
    port: int,
    protocol: str,
) -> PortProtection:
    rules = [r for nsg in network.nsg_ids for r in _rules_of(rules_by_nsg, nsg)]
    return PortProtection(
        vm=vm,
        port=port,
        protocol=protocol,
        deny_missing=not jit_deny_rules(rules, port=port, network=network),
        exposure=evaluate_port(network, rules_by_nsg, port=port, protocol=protocol),
    )


def _rules_of(
    rules_by_nsg: Mapping[str, Sequence[SecurityRuleView]], nsg_id: str
) -> Sequence[SecurityRuleView]:
    found = rules_by_nsg.get(nsg_id)
    if found is not None:
        return found
    lowered = nsg_id.lower()
    return next((v for k, v in rules_by_nsg.items() if k.lower() == lowered), ())


def _scope_text(scope: Scope) -> str:
    return {
        Scope.INTERNET: "from the Internet",
        Scope.VIRTUAL_NETWORK: "from inside the virtual network",
        Scope.AZURE_LOAD_BALANCER: "from the Azure load balancer",
        Scope.SERVICE_TAG: "from a service tag's addresses",
    }[scope]


def _rule_text(rule: RuleRef) -> str:
    nsg = rule.nsg_id.rsplit("/", 1)[-1]
    kind = "default rule" if rule.default else "rule"
    return f"{kind} {rule.name} (priority {rule.priority}, NSG {nsg})"


def _admitting_rules(admission: Admission) -> list[RuleRef]:
    return [r for r in (admission.subnet_rule, admission.nic_rule) if r is not None]


def _admissions_text(exposure: PortExposure) -> str:
    by_scope: dict[Scope, list[Admission]] = {}
    for admission in exposure.admissions:
        by_scope.setdefault(admission.scope, []).append(admission)
    texts = []
    for scope, admissions in by_scope.items():
        sources = sorted({s for a in admissions for s in a.sources})
        rules = {_rule_text(r): None for a in admissions for r in _admitting_rules(a)}
        texts.append(
            f"{_scope_text(scope)} ({', '.join(sources[:4])}{', …' if len(sources) > 4 else ''})"
            f" by {' and '.join(rules) or 'no NSG'}"
        )
    return "; ".join(texts)


def status_entry(protection: PortProtection) -> dict[str, Any]:
    """The status form of a port that is not Protected."""
    admitted: dict[tuple[str, str, str], dict[str, Any]] = {}
    for admission in protection.exposure.admissions:
        for rule in _admitting_rules(admission):
            entry = admitted.setdefault(
                (rule.nsg_id.lower(), rule.name, admission.scope.value),
                {
                    "nsg": rule.nsg_id,
                    "rule": rule.name,
                    "priority": rule.priority,
                    "defaultRule": rule.default,
                    "scope": admission.scope.value,
                    "sources": [],
                },
            )
            entry["sources"] = sorted(set(entry["sources"]) | set(admission.sources))
    return {
        "vm": protection.vm,
        "port": protection.port,
        "protocol": protection.protocol,
        "state": protection.state.value,
        "internet": protection.internet,
        "denyRuleMissing": protection.deny_missing,
        "admittedBy": sorted(admitted.values(), key=lambda e: (e["scope"], e["priority"])),
    }


@dataclass(frozen=True, slots=True)
class ProtectionReport:
    """The status block, the ``Exposed`` condition and the transitions since last time."""

    status: dict[str, Any]
    condition_status: str  # "True" / "False"
    reason: str
    message: str


def report(protections: Sequence[PortProtection]) -> ProtectionReport:
    counts = {state: 0 for state in Protection}
    for p in protections:
        counts[p.state] += 1
    flagged = [p for p in protections if p.state is not Protection.PROTECTED]
    # Internet first: it is what a person must fix first.
    flagged.sort(key=lambda p: (not p.internet, p.state is not Protection.UNPROTECTED, p.key))
    status = {
        "protected": counts[Protection.PROTECTED],
        "exposed": counts[Protection.EXPOSED],
        "unprotected": counts[Protection.UNPROTECTED],
        "ports": [status_entry(p) for p in flagged[:MAX_LISTED]],
    }
    reachable = [p for p in protections if p.exposure.exposed]
    if not flagged:
        return ProtectionReport(
            status,
            "False",
            "OnlyJitAdmits",
            f"all {len(protections)} JIT port(s) are reachable only through JIT grants",
        )
    named = "; ".join(p.describe() for p in flagged[:MAX_NAMED])
    more = (
        f" (and {len(flagged) - MAX_NAMED} more, see status.exposure)"
        if len(flagged) > MAX_NAMED
        else ""
    )
    if counts[Protection.UNPROTECTED]:
        reason = "DenyRuleMissing"
        advice = (
            " JIT's deny rule was removed outside Azure JIT (often an IaC apply that owns the "
            "NSG): the operator re-applies the Azure policy so JIT re-creates it; make your "
            "Terraform/Bicep ignore rules named *JITRule* (docs/nsg-as-code.md)."
        )
    else:
        reason = "InternetExposed" if any(p.internet for p in reachable) else "ExposedOutsideJit"
        advice = (
            " JIT cannot close what another rule opens: remove or narrow those rules (or move "
            "them below JIT's deny rule); the operator never changes rules it does not own."
        )
    status_text = "True" if reachable else "False"
    return ProtectionReport(
        status,
        status_text,
        reason,
        f"{len(flagged)} of {len(protections)} JIT port(s) not protected by JIT alone: "
        f"{named}{more}.{advice}",
    )


@dataclass(frozen=True, slots=True)
class Transition:
    type: str  # Event type
    reason: str
    message: str


def transitions(
    before: Iterable[Mapping[str, Any]], after: Sequence[PortProtection], *, listed_all: bool
) -> list[Transition]:
    """Events for ports whose state changed since the last recorded status (a port that was
    not listed was Protected). ``listed_all``: the last status listed every flagged port."""
    previous = {
        f"{e.get('vm')}/{e.get('port')}/{e.get('protocol')}": str(e.get("state")) for e in before
    }
    events = []
    for p in after:
        was = previous.get(p.key, Protection.PROTECTED.value if listed_all else None)
        if was is None or was == p.state.value:
            continue
        if p.state is Protection.EXPOSED:
            events.append(Transition("Warning", "PortExposed", p.describe()))
        elif p.state is Protection.UNPROTECTED:
            events.append(Transition("Warning", "DenyRuleMissing", p.describe()))
        else:
            events.append(
                Transition(
                    "Normal",
                    "PortProtected",
                    f"{p.vm} port {p.port}/{p.protocol}: reachable only through JIT grants again",
                )
            )
    return events
