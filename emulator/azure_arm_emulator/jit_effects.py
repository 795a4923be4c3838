"""JIT's effect on network security groups, and its revoking at ``endTimeUtc``.

- A policy keeps one *deny* rule per VM, NSG and protocol covering the policy's ports:
  ``MicrosoftDefenderForCloud-JITRule_<int32>_<GUID>``, lowest precedence free (4096, 4095,
  ...), source ``*``, destination the VM's private address(es) (E2, E4).
- An initiated port gets an *allow* rule on every NSG guarding the VM:
  ``MicrosoftDefenderForCloud-JITRule-<int32>-<GUID>``, highest precedence free (100, 101,
  ...), source the requested prefix(es) (E2, E3). Names and descriptions follow the setting
  ``jit_rule_generation`` (see :mod:`.jit_rule_names`); every JIT rule also records its
  policy (``SecurityRule.jit_policy``), which is how the emulator tells JIT's rules apart.
  A newer request for the same VM port revokes the older one (``Revoked``/
  ``NewerRequestInitiated``) and replaces its rule.
- An initiated port stays ``Initiating`` (no allow rule yet) until ``apply_delay_seconds``
  of emulator time have passed (default 3), then is applied as above (E7, U2).
- At ``endTimeUtc`` + ``revoke_lag_seconds`` (unless ``never_revoke``) the allow rules go and
  the port becomes ``Revoked``/``Expired``; this runs from the server's background task.
- Deleting a policy removes its deny rules and any allow rules still open.
JIT's own rule changes are internal to Azure and take effect at once (no LRO).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from azure_arm_emulator import ids, jit_rule_names
from azure_arm_emulator.clock import EmulatorClock
from azure_arm_emulator.model import (
    DenyRuleRef,
    JitPolicy,
    JitPortRule,
    JitRequestPort,
    OpenedRule,
    SecurityRule,
    Vm,
)
from azure_arm_emulator.nsg_rules import free_priority
from azure_arm_emulator.settings import EmulatorSettings
from azure_arm_emulator.store import Store

_NSG_PROTOCOL = {"TCP": "Tcp", "UDP": "Udp", "*": "*"}


@dataclass(frozen=True, slots=True)
class _PendingApply:
    when: datetime
    policy: JitPolicy
    vm: Vm
    rule: JitPortRule
    vm_id: str
    port: JitRequestPort


def _one_or_many(single: str, plural: str, values: list[str]) -> dict[str, Any]:
    return {single: values[0]} if len(values) == 1 else {plural: list(values)}


class JitEffects:
    def __init__(self, store: Store, settings: EmulatorSettings, clock: EmulatorClock) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._applying: list[_PendingApply] = []

    # ----------------------------------------------------------------------- deny rules

    def sync_deny_rules(self, policy: JitPolicy) -> None:
        """Make the policy's deny rules match its VMs and ports (create, update, remove)."""
        policy_key = ids.key(policy.id)
        desired: dict[tuple[str, str, str], tuple[Vm, list[int], list[str]]] = {}
        for policy_vm in policy.virtual_machines:
            vm = self.store.vm_by_id(policy_vm.id)
            if vm is None:
                continue
            by_protocol: dict[str, list[int]] = {}
            for port in policy_vm.ports:
                by_protocol.setdefault(port.protocol, []).append(port.number)
            for guard in self.store.guards(vm):
                for protocol, numbers in by_protocol.items():
                    slot = (ids.key(guard.nsg.id), ids.key(vm.id), protocol)
                    desired[slot] = (vm, sorted(numbers), list(guard.addresses))
        kept: list[DenyRuleRef] = []
        for ref in policy.deny_rules:
            slot = (ref.nsg, ref.vm, ref.protocol)
            nsg = self.store.nsgs.get(ref.nsg)
            if slot not in desired:
                if nsg is not None and nsg.rules.pop(ref.rule.lower(), None) is not None:
                    nsg.touch()
                continue
            vm, numbers, addresses = desired.pop(slot)
            if nsg is None:
                continue
            existing = nsg.rules.get(ref.rule.lower())
            priority = (
                existing.properties["priority"]
                if existing is not None
                else free_priority(nsg, direction="Inbound", start=4096, step=-1)
            )
            props = self._deny_properties(
                policy,
                vm,
                generation=self._deny_generation(ref.rule),
                protocol=ref.protocol,
                numbers=numbers,
                addresses=addresses,
                priority=priority,
            )
            if existing is None or existing.properties != props:
                nsg.rules[ref.rule.lower()] = SecurityRule(ref.rule, props, jit_policy=policy_key)
                nsg.touch()
            kept.append(ref)
        for (nsg_key, vm_key, protocol), (vm, numbers, addresses) in desired.items():
            nsg = self.store.nsgs[nsg_key]
            name = jit_rule_names.deny_rule_name(self._generation("Deny"), vm_key)
            priority = free_priority(nsg, direction="Inbound", start=4096, step=-1)
            props = self._deny_properties(
                policy,
                vm,
                generation=self._generation("Deny"),
                protocol=protocol,
                numbers=numbers,
                addresses=addresses,
                priority=priority,
            )
            nsg.rules[name.lower()] = SecurityRule(name, props, jit_policy=policy_key)
            nsg.touch()
            kept.append(DenyRuleRef(nsg=nsg_key, vm=vm_key, protocol=protocol, rule=name))
        policy.deny_rules = kept

    def _generation(self, access: Literal["Allow", "Deny"]) -> jit_rule_names.RuleGeneration:
        return jit_rule_names.generation_for(self.settings.jit_rule_generation, access)

    @staticmethod
    def _deny_generation(rule_name: str) -> jit_rule_names.RuleGeneration:
        """An existing deny rule keeps its generation when updated (Azure does not rename)."""
        if rule_name.startswith(jit_rule_names.LEGACY.prefix):
            return jit_rule_names.LEGACY
        return jit_rule_names.CURRENT

    @staticmethod
    def _deny_properties(
        policy: JitPolicy,
        vm: Vm,
        *,
        generation: jit_rule_names.RuleGeneration,
        protocol: str,
        numbers: list[int],
        addresses: list[str],
        priority: int,
    ) -> dict[str, Any]:
        return {
            "description": jit_rule_names.deny_description(generation, policy.name, vm.name),
            "protocol": _NSG_PROTOCOL[protocol],
            "sourcePortRange": "*",
            **_one_or_many(
                "destinationPortRange", "destinationPortRanges", [str(n) for n in numbers]
            ),
            "sourceAddressPrefix": "*",
            **_one_or_many("destinationAddressPrefix", "destinationAddressPrefixes", addresses),
            "access": "Deny",
            "priority": priority,
            "direction": "Inbound",
        }

    # ----------------------------------------------------------------------- allow rules

    def open(
        self,
        policy: JitPolicy,
        vm: Vm,
        rule: JitPortRule,
        port: JitRequestPort,
    ) -> None:
        """Add the allow rule(s) for an initiated port on every NSG guarding ``vm``."""
        sources = (
            [port.allowed_prefix] if port.allowed_prefix else list(port.allowed_prefixes or [])
        )
        generation = self._generation("Allow")
        for guard in self.store.guards(vm):
            nsg = guard.nsg
            name = jit_rule_names.allow_rule_name(generation, ids.key(vm.id))
            props = {
                "description": jit_rule_names.allow_description(generation, policy.name, vm.name),
                "protocol": _NSG_PROTOCOL[rule.protocol],
                "sourcePortRange": "*",
                "destinationPortRange": str(port.number),
                **_one_or_many("sourceAddressPrefix", "sourceAddressPrefixes", sources),
                **_one_or_many(
                    "destinationAddressPrefix", "destinationAddressPrefixes", guard.addresses
                ),
                "access": "Allow",
                "priority": free_priority(nsg, direction="Inbound", start=100, step=1),
                "direction": "Inbound",
            }
            nsg.rules[name.lower()] = SecurityRule(name, props, jit_policy=ids.key(policy.id))
            nsg.touch()
            port.opened.append(OpenedRule(nsg=ids.key(nsg.id), rule=name))

    def apply(
        self, policy: JitPolicy, vm: Vm, rule: JitPortRule, vm_id: str, port: JitRequestPort
    ) -> None:
        """Take effect: a newer initiate for the VM port replaces the older one's rules
        (unless ``second_initiate`` is "add", U3)."""
        if self.settings.second_initiate == "replace":
            self.supersede(policy, vm_id, port.number)
        port.status = "Initiated"
        self.open(policy, vm, rule, port)

    def apply_later(
        self,
        policy: JitPolicy,
        vm: Vm,
        rule: JitPortRule,
        vm_id: str,
        port: JitRequestPort,
        *,
        when: datetime,
    ) -> None:
        self._applying.append(_PendingApply(when, policy, vm, rule, vm_id, port))

    def apply_due(self, now: datetime | None = None) -> int:
        """Apply every initiate whose delay has passed (in initiate order); how many."""
        moment = now or self.clock.now()
        due = [p for p in self._applying if p.when <= moment]
        self._applying = [p for p in self._applying if p.when > moment]
        for item in due:
            if item.port.status == "Initiating" and ids.key(item.policy.id) in {
                ids.key(p.id) for p in self.store.policies.values()
            }:
                self.apply(item.policy, item.vm, item.rule, item.vm_id, item.port)
        return len(due)

    def close(self, port: JitRequestPort, *, reason: str) -> None:
        """Remove the port's allow rules (those still there) and mark it ``Revoked``."""
        for opened in port.opened:
            nsg = self.store.nsgs.get(opened.nsg)
            if nsg is not None and nsg.rules.pop(opened.rule.lower(), None) is not None:
                nsg.touch()
        port.opened = []
        port.status = "Revoked"
        port.status_reason = reason

    def supersede(self, policy: JitPolicy, vm_id: str, number: int) -> None:
        for request in policy.requests:
            for request_vm in request.virtual_machines:
                if ids.key(request_vm.id) != ids.key(vm_id):
                    continue
                for port in request_vm.ports:
                    if port.number == number and port.status == "Initiated":
                        self.close(port, reason="NewerRequestInitiated")

    def revoke_removed_ports(self, policy: JitPolicy) -> None:
        """After an update: ports no longer in the policy lose their open access."""
        configured = {
            (ids.key(vm.id), port.number) for vm in policy.virtual_machines for port in vm.ports
        }
        for request in policy.requests:
            for request_vm in request.virtual_machines:
                for port in request_vm.ports:
                    if port.status == "Initiated" and (
                        (ids.key(request_vm.id), port.number) not in configured
                    ):
                        self.close(port, reason="UserRequested")

    def remove_policy(self, policy: JitPolicy) -> None:
        for request in policy.requests:
            for request_vm in request.virtual_machines:
                for port in request_vm.ports:
                    if port.status == "Initiated":
                        self.close(port, reason="UserRequested")
        policy.virtual_machines = []
        self.sync_deny_rules(policy)

    # ----------------------------------------------------------------------- expiry

    def _active_ports(self) -> list[JitRequestPort]:
        return [
            port
            for policy in self.store.policies.values()
            for request in policy.requests
            for request_vm in request.virtual_machines
            for port in request_vm.ports
            if port.status == "Initiated"
        ]

    def expire_due(self, now: datetime | None = None) -> int:
        """Revoke every initiated port whose end (plus the lag) has passed; how many."""
        if self.settings.never_revoke:
            return 0
        moment = now or self.clock.now()
        lag = timedelta(seconds=self.settings.revoke_lag_seconds)
        due = [port for port in self._active_ports() if port.end_time + lag <= moment]
        for port in due:
            self.close(port, reason="Expired")
        return len(due)

    def next_expiry(self) -> datetime | None:
        """When the next apply or revoke is due on the emulator clock (None: nothing)."""
        due = [p.when for p in self._applying]
        if not self.settings.never_revoke:
            lag = timedelta(seconds=self.settings.revoke_lag_seconds)
            due += [port.end_time + lag for port in self._active_ports()]
        return min(due, default=None)
