"""Microsoft.Security JIT network access policies, api-version 2020-01-01.

All operations of the spec: List (subscription), ListByRegion, ListByResourceGroup,
ListByResourceGroupAndRegion (paged with ``nextLink``), Get, CreateOrUpdate (200), Delete
(200, or 204 when absent) and Initiate (202 with the request). Policies keep their
``requests`` history the way Azure shows it (each initiate appended, port status moving
from ``Initiated`` to ``Revoked`` with a ``statusReason``). A client's ``requests`` in a PUT
body are ignored: the history is the service's. ``maxRequestAccessDuration`` comes back in
.NET TimeSpan form (``PT3H``, ``P1D``), as Azure normalises it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from azure_jit_operator.emulator import errors, ids
from azure_jit_operator.emulator.arm import (
    SECURITY_API_VERSIONS,
    ArmRequest,
    ArmResponse,
    Route,
    page,
)
from azure_jit_operator.emulator.clock import EmulatorClock, format_timestamp
from azure_jit_operator.emulator.jit_effects import JitEffects
from azure_jit_operator.emulator.jit_validation import (
    check_initiate_port,
    initiate_error,
    parse_initiate,
    parse_policy,
)
from azure_jit_operator.emulator.model import (
    JitPolicy,
    JitPortRule,
    JitRequest,
    JitRequestPort,
    JitRequestVm,
    Vm,
)
from azure_jit_operator.emulator.settings import EmulatorSettings
from azure_jit_operator.emulator.store import Store, in_scope

POLICY_TYPE = "Microsoft.Security/locations/jitNetworkAccessPolicies"
_SUB = "/subscriptions/{subscriptionId}"
_RG = _SUB + "/resourceGroups/{resourceGroupName}"
_PROVIDER = "/providers/Microsoft.Security"
_REGION = "/locations/{ascLocation}"
_POLICIES = "/jitNetworkAccessPolicies"
_POLICY = _RG + _PROVIDER + _REGION + _POLICIES + "/{jitNetworkAccessPolicyName}"
_ACTION = "Microsoft.Security/locations/jitNetworkAccessPolicies"


def format_duration(value: timedelta) -> str:
    """.NET ``XmlConvert.ToString(TimeSpan)`` style: ``PT3H``, ``PT1H30M``, ``P1D``."""
    total = int(value.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time_part = "".join(
        f"{amount}{unit}"
        for amount, unit in ((hours, "H"), (minutes, "M"), (seconds, "S"))
        if amount
    )
    text = "P" + (f"{days}D" if days else "")
    if time_part or not days:
        text += "T" + (time_part or "0S")
    return text


def _render_port_rule(rule: JitPortRule) -> dict[str, Any]:
    out: dict[str, Any] = {"number": rule.number, "protocol": rule.protocol}
    if rule.allowed_prefixes is not None:
        out["allowedSourceAddressPrefixes"] = list(rule.allowed_prefixes)
    else:
        out["allowedSourceAddressPrefix"] = rule.allowed_prefix
    out["maxRequestAccessDuration"] = format_duration(rule.max_duration)
    return out


def _render_request_port(port: JitRequestPort) -> dict[str, Any]:
    out: dict[str, Any] = {"number": port.number}
    if port.allowed_prefixes is not None:
        out["allowedSourceAddressPrefixes"] = list(port.allowed_prefixes)
    else:
        out["allowedSourceAddressPrefix"] = port.allowed_prefix
    out["endTimeUtc"] = format_timestamp(port.end_time)
    out["status"] = port.status
    out["statusReason"] = port.status_reason
    return out


def render_request(request: JitRequest) -> dict[str, Any]:
    out: dict[str, Any] = {
        "virtualMachines": [
            {"id": vm.id, "ports": [_render_request_port(p) for p in vm.ports]}
            for vm in request.virtual_machines
        ],
        "startTimeUtc": format_timestamp(request.start_time),
        "requestor": request.requestor,
    }
    if request.justification is not None:
        out["justification"] = request.justification
    return out


def render_policy(policy: JitPolicy) -> dict[str, Any]:
    vms = []
    for vm in policy.virtual_machines:
        item: dict[str, Any] = {"id": vm.id, "ports": [_render_port_rule(p) for p in vm.ports]}
        if vm.public_ip_address is not None:
            item["publicIpAddress"] = vm.public_ip_address
        vms.append(item)
    body: dict[str, Any] = {
        "id": policy.id,
        "name": policy.name,
        "type": POLICY_TYPE,
        "location": policy.location,
    }
    if policy.kind is not None:
        body["kind"] = policy.kind
    body["properties"] = {
        "virtualMachines": vms,
        "requests": [render_request(r) for r in policy.requests],
        "provisioningState": policy.provisioning_state,
    }
    return body


def policy_not_found(name: str, rg: str, location: str) -> errors.ArmError:
    return errors.ArmError(
        404,
        "PolicyNotFound",
        f"Just-in-time network access policy '{name}' was not found in resource group '{rg}' "
        f"and location '{location}'.",
    )


def same_location(a: str, b: str) -> bool:
    return a.replace(" ", "").lower() == b.replace(" ", "").lower()


class JitApi:
    def __init__(
        self, store: Store, settings: EmulatorSettings, clock: EmulatorClock, effects: JitEffects
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.effects = effects

    def _lookup(self, request: ArmRequest) -> tuple[str, JitPolicy | None]:
        p = request.params
        self.store.require_resource_group(p["subscriptionId"], p["resourceGroupName"])
        key = ids.key(
            ids.jit_policy_id(
                p["subscriptionId"],
                p["resourceGroupName"],
                p["ascLocation"],
                p["jitNetworkAccessPolicyName"],
            )
        )
        return key, self.store.policies.get(key)

    def _require(self, request: ArmRequest) -> JitPolicy:
        _, policy = self._lookup(request)
        if policy is None:
            p = request.params
            raise policy_not_found(
                p["jitNetworkAccessPolicyName"], p["resourceGroupName"], p["ascLocation"]
            )
        return policy

    def list_policies(self, request: ArmRequest) -> ArmResponse:
        p = request.params
        rg = p.get("resourceGroupName")
        if rg is None:
            self.store.require_subscription(p["subscriptionId"])
        else:
            self.store.require_resource_group(p["subscriptionId"], rg)
        region = p.get("ascLocation")
        items = [
            render_policy(policy)
            for policy in in_scope(self.store.policies.values(), p["subscriptionId"], rg)
            if region is None or same_location(policy.location, region)
        ]
        return ArmResponse(200, page(items, request, page_size=self.settings.page_size))

    def get_policy(self, request: ArmRequest) -> ArmResponse:
        return ArmResponse(200, render_policy(self._require(request)))

    def put_policy(self, request: ArmRequest) -> ArmResponse:
        body = request.json_object()
        key, existing = self._lookup(request)
        p = request.params
        kind, vms = parse_policy(body, store=self.store, subscription=p["subscriptionId"])
        return ArmResponse(200, render_policy(self.apply_policy(key, existing, p, kind, vms)))

    def apply_policy(
        self,
        key: str,
        existing: JitPolicy | None,
        params: dict[str, str],
        kind: str | None,
        vms: list[Any],
    ) -> JitPolicy:
        """Store a validated policy and bring the NSGs in line (also used out-of-band)."""
        group = self.store.require_resource_group(
            params["subscriptionId"], params["resourceGroupName"]
        )
        policy = existing or JitPolicy(
            subscription=group.subscription,
            resource_group=group.name,
            location=params["ascLocation"],
            name=params["jitNetworkAccessPolicyName"],
            virtual_machines=[],
        )
        policy.kind = kind
        policy.virtual_machines = vms
        self.store.policies[key] = policy
        self.effects.revoke_removed_ports(policy)
        self.effects.sync_deny_rules(policy)
        return policy

    def delete_policy(self, request: ArmRequest) -> ArmResponse:
        key, policy = self._lookup(request)
        if policy is None:
            return ArmResponse(204)
        self.remove_policy(key)
        return ArmResponse(200)

    def remove_policy(self, key: str) -> None:
        policy = self.store.policies.pop(key, None)
        if policy is not None:
            self.effects.remove_policy(policy)

    def initiate(self, request: ArmRequest) -> ArmResponse:
        if request.params["jitNetworkAccessPolicyInitiateType"].lower() != "initiate":
            raise errors.invalid_request_uri(request.path)
        body = parse_initiate(request.json_object())
        policy = self._require(request)
        now = self.clock.now()
        planned: list[tuple[Vm, JitPortRule, JitRequestVm, JitRequestPort]] = []
        request_vms: list[JitRequestVm] = []
        for item in body.virtual_machines:
            policy_vm = next(
                (v for v in policy.virtual_machines if ids.key(v.id) == ids.key(item.id)), None
            )
            if policy_vm is None:
                raise initiate_error(
                    f"Virtual machine '{item.id}' is not part of policy '{policy.name}'.",
                    f"{item.target}.id",
                )
            vm = self.store.vm_by_id(item.id)
            if vm is None:
                raise initiate_error(f"Virtual machine '{item.id}' was not found.", item.target)
            request_vm = JitRequestVm(id=item.id, ports=[])
            for port in item.ports:
                if any(existing.number == port.number for existing in request_vm.ports):
                    raise initiate_error(
                        f"Port {port.number} is requested more than once.", port.target
                    )
                rule, end, single, many = check_initiate_port(
                    policy=policy, policy_vm=policy_vm, port=port, now=now, caller_ip=request.remote
                )
                request_port = JitRequestPort(
                    number=port.number,
                    end_time=end,
                    status="Initiated",
                    status_reason="UserRequested",
                    allowed_prefix=single,
                    allowed_prefixes=many,
                )
                request_vm.ports.append(request_port)
                planned.append((vm, rule, request_vm, request_port))
            request_vms.append(request_vm)
        delay = timedelta(seconds=self.settings.apply_delay_seconds)
        for vm, rule, request_vm, request_port in planned:
            if delay:
                request_port.status = "Initiating"
                self.effects.apply_later(
                    policy, vm, rule, request_vm.id, request_port, when=now + delay
                )
            else:
                self.effects.apply(policy, vm, rule, request_vm.id, request_port)
        jit_request = JitRequest(
            virtual_machines=request_vms,
            start_time=now,
            requestor=request.principal.name,
            justification=body.justification,
        )
        policy.requests.append(jit_request)
        return ArmResponse(202, render_request(jit_request))

    def routes(self) -> list[Route]:
        v = SECURITY_API_VERSIONS
        read = f"{_ACTION}/read"
        return [
            Route(
                "GET",
                _SUB + _PROVIDER + _POLICIES,
                "JitNetworkAccessPolicies_List",
                v,
                read,
                self.list_policies,
            ),
            Route(
                "GET",
                _SUB + _PROVIDER + _REGION + _POLICIES,
                "JitNetworkAccessPolicies_ListByRegion",
                v,
                read,
                self.list_policies,
            ),
            Route(
                "GET",
                _RG + _PROVIDER + _POLICIES,
                "JitNetworkAccessPolicies_ListByResourceGroup",
                v,
                read,
                self.list_policies,
            ),
            Route(
                "GET",
                _RG + _PROVIDER + _REGION + _POLICIES,
                "JitNetworkAccessPolicies_ListByResourceGroupAndRegion",
                v,
                read,
                self.list_policies,
            ),
            Route("GET", _POLICY, "JitNetworkAccessPolicies_Get", v, read, self.get_policy),
            Route(
                "PUT",
                _POLICY,
                "JitNetworkAccessPolicies_CreateOrUpdate",
                v,
                f"{_ACTION}/write",
                self.put_policy,
            ),
            Route(
                "DELETE",
                _POLICY,
                "JitNetworkAccessPolicies_Delete",
                v,
                f"{_ACTION}/delete",
                self.delete_policy,
            ),
            Route(
                "POST",
                _POLICY + "/{jitNetworkAccessPolicyInitiateType}",
                "JitNetworkAccessPolicies_Initiate",
                v,
                f"{_ACTION}/initiate/action",
                self.initiate,
            ),
        ]
