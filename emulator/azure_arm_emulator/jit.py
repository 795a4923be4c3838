"""Microsoft.Security JIT network access policies, api-version 2020-01-01.

All operations of the spec: List (subscription), ListByRegion, ListByResourceGroup,
ListByResourceGroupAndRegion (paged with ``nextLink``), Get, CreateOrUpdate (200), Delete
(200, or 204 when absent) and Initiate (202 with the request). Policies keep their
``requests`` history the way Azure shows it (each initiate appended, port status moving
from ``Initiating`` to ``Initiated`` to ``Revoked`` with a ``statusReason``). A client's
``requests`` in a PUT body are ignored: the history is the service's.
``maxRequestAccessDuration`` comes back in .NET TimeSpan form (``PT3H``, ``P1D``), as Azure
normalises it.

As recorded against real Azure: a PUT answers 200 with ``provisioningState: "Updating"``,
which GETs keep showing for ``policy_settle_seconds`` (E6; 0 = ``Succeeded`` at once, as a
2019 recording showed); the initiate's 202 body says ``Initiating``/``UserRequested`` and
echoes ``endTimeUtc`` as sent, at .NET's 100 ns precision (E7). ``history_justifications``
and ``history_limit`` switch what the history shows for the unknowns U1 and U7.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from azure_arm_emulator import errors, ids
from azure_arm_emulator.arm import (
    SECURITY_API_VERSIONS,
    ArmRequest,
    ArmResponse,
    Route,
    page,
)
from azure_arm_emulator.clock import (
    EmulatorClock,
    format_sent_timestamp,
    format_timestamp,
)
from azure_arm_emulator.jit_effects import JitEffects
from azure_arm_emulator.jit_validation import (
    check_initiate_port,
    initiate_error,
    not_a_subset,
    parse_initiate,
    parse_policy,
)
from azure_arm_emulator.model import (
    JitPolicy,
    JitPortRule,
    JitRequest,
    JitRequestPort,
    JitRequestVm,
    Vm,
)
from azure_arm_emulator.settings import EmulatorSettings
from azure_arm_emulator.store import Store, in_scope

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
    out["endTimeUtc"] = port.end_time_text or format_timestamp(port.end_time)
    out["status"] = port.status
    out["statusReason"] = port.status_reason
    return out


def render_request(request: JitRequest, *, justification: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "virtualMachines": [
            {"id": vm.id, "ports": [_render_request_port(p) for p in vm.ports]}
            for vm in request.virtual_machines
        ],
        "startTimeUtc": format_timestamp(request.start_time),
        "requestor": request.requestor,
    }
    if justification and request.justification is not None:
        out["justification"] = request.justification
    return out


def provisioning_state(policy: JitPolicy, now: datetime) -> str:
    """``Updating`` until the last PUT has settled (E6), then ``Succeeded``."""
    if policy.settles_at is not None and now < policy.settles_at:
        return "Updating"
    return policy.provisioning_state


def render_policy(
    policy: JitPolicy, *, now: datetime, settings: EmulatorSettings
) -> dict[str, Any]:
    """The policy as Azure shows it at ``now``; the history as ``settings`` say (U1, U7)."""
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
    history = policy.requests
    if settings.history_limit is not None:
        history = history[-settings.history_limit :]
    body["properties"] = {
        "virtualMachines": vms,
        "requests": [
            render_request(r, justification=settings.history_justifications) for r in history
        ],
        "provisioningState": provisioning_state(policy, now),
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

    def render(self, policy: JitPolicy) -> dict[str, Any]:
        return render_policy(policy, now=self.clock.now(), settings=self.settings)

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
            self.render(policy)
            for policy in in_scope(self.store.policies.values(), p["subscriptionId"], rg)
            if region is None or same_location(policy.location, region)
        ]
        return ArmResponse(200, page(items, request, page_size=self.settings.page_size))

    def get_policy(self, request: ArmRequest) -> ArmResponse:
        return ArmResponse(200, self.render(self._require(request)))

    def put_policy(self, request: ArmRequest) -> ArmResponse:
        body = request.json_object()
        key, existing = self._lookup(request)
        p = request.params
        kind, vms = parse_policy(
            body,
            store=self.store,
            subscription=p["subscriptionId"],
            name=p["jitNetworkAccessPolicyName"],
        )
        return ArmResponse(200, self.render(self.apply_policy(key, existing, p, kind, vms)))

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
        settle = timedelta(seconds=self.settings.policy_settle_seconds)
        policy.settles_at = self.clock.now() + settle if settle else None
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
                raise not_a_subset(policy, f"{item.target}.id")
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
                    policy=policy,
                    policy_vm=policy_vm,
                    port=port,
                    now=now,
                    caller_ip=request.remote,
                    exact_sources=self.settings.exact_source_prefix_only,
                )
                request_port = JitRequestPort(
                    number=port.number,
                    end_time=end,
                    status="Initiating",
                    status_reason="UserRequested",
                    allowed_prefix=single,
                    allowed_prefixes=many,
                    end_time_text=format_sent_timestamp(port.end_text)
                    if port.end_text is not None
                    else None,
                )
                request_vm.ports.append(request_port)
                planned.append((vm, rule, request_vm, request_port))
            request_vms.append(request_vm)
        jit_request = JitRequest(
            virtual_machines=request_vms,
            start_time=now,
            # A service principal's initiate was recorded with requestor "" (E7); users and
            # the world's tokens keep their name.
            requestor="" if request.principal.client_id else request.principal.name,
            justification=body.justification,
        )
        # The 202 shows the request as accepted, not yet in effect (E7), even when the
        # emulator applies it at once (apply_delay_seconds 0).
        answer = render_request(jit_request)
        delay = timedelta(seconds=self.settings.apply_delay_seconds)
        for vm, rule, request_vm, request_port in planned:
            if delay:
                self.effects.apply_later(
                    policy, vm, rule, request_vm.id, request_port, when=now + delay
                )
            else:
                self.effects.apply(policy, vm, rule, request_vm.id, request_port)
        policy.requests.append(jit_request)
        return ArmResponse(202, answer)

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
