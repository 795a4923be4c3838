"""Test controls under ``/_emulator`` (not ARM-shaped, JSON in and out).

=================================================  ===========================================
``GET  /_emulator/health``                          liveness
``GET  /_emulator/state``                           clock, settings, VMs, NSGs, policies
``POST /_emulator/reset``                           back to the world, settings, real clock
``GET|PATCH /_emulator/settings``                   revoke lag, never-revoke, paging, latency
``GET|POST /_emulator/clock``                       ``{"advance_seconds"|"offset_seconds"|"now"}``
``POST /_emulator/tick``                            apply / revoke / finish what is due now
``POST /_emulator/operations/complete``             finish every pending long-running operation
``GET|DELETE /_emulator/calls``                     call counts per operation id (reset)
``GET|POST|DELETE /_emulator/faults[/{id}]``        fault injection (see :mod:`.faults`)
``POST /_emulator/vms``                             add a VM ``{subscription, resourceGroup, vm}``
``DELETE /_emulator/vms/{sub}/{rg}/{name}``         remove a VM (and its NICs)
``PUT  /_emulator/vms/{sub}/{rg}/{name}/tags``      replace a VM's tags ``{"tags": {...}}``
``GET  /_emulator/vms/{sub}/{rg}/{name}/access``    NSGs guarding the VM, JIT rules, open ports
``GET  /_emulator/vms/{sub}/{rg}/{name}/reachability``  ``?source=&port=&protocol=[&sourcePort=]``:
                                                    does traffic get through, by which rules
                                                    (see :mod:`.reachability`)
``PUT|DELETE /_emulator/policies/{sub}/{rg}/{loc}/{name}``  change/delete a JIT policy out of band
``PUT  /_emulator/defender/{sub}``                   servers plan ``{pricing_tier, sub_plan}``
``GET|POST /_emulator/identities``                  Entra identities; add or replace one
``DELETE /_emulator/identities/{clientId}``         remove an identity (its tokens lose access)
=================================================  ===========================================

When started with an admin token, every call needs ``X-Emulator-Admin-Token: <token>``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from azure_arm_emulator import ids
from azure_arm_emulator.clock import format_timestamp, parse_timestamp
from azure_arm_emulator.core import Emulator
from azure_arm_emulator.errors import ArmError
from azure_arm_emulator.faults import FaultError
from azure_arm_emulator.identities import parse_identity
from azure_arm_emulator.jit_validation import parse_policy
from azure_arm_emulator.model import Vm
from azure_arm_emulator.nsg_rules import render_rule
from azure_arm_emulator.pricing import parse_plan
from azure_arm_emulator.reachability import reachability
from azure_arm_emulator.settings import SettingsError
from azure_arm_emulator.world import WorldError, parse_vm

ADMIN_PREFIX = "/_emulator"
TOKEN_HEADER = "X-Emulator-Admin-Token"  # noqa: S105 - a header name

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class AdminApi:
    def __init__(self, emulator: Emulator, *, token: str | None = None) -> None:
        self.emulator = emulator
        self.token = token

    def register(self, app: web.Application) -> None:
        routes: list[tuple[str, str, _Handler]] = [
            ("GET", "/health", self.health),
            ("GET", "/state", self.state),
            ("POST", "/reset", self.reset),
            ("GET", "/settings", self.get_settings),
            ("PATCH", "/settings", self.patch_settings),
            ("GET", "/clock", self.get_clock),
            ("POST", "/clock", self.move_clock),
            ("POST", "/tick", self.tick),
            ("POST", "/operations/complete", self.complete_operations),
            ("GET", "/calls", self.get_calls),
            ("DELETE", "/calls", self.reset_calls),
            ("GET", "/faults", self.get_faults),
            ("POST", "/faults", self.add_fault),
            ("DELETE", "/faults", self.clear_faults),
            ("DELETE", "/faults/{fault_id}", self.remove_fault),
            ("POST", "/vms", self.add_vm),
            ("DELETE", "/vms/{sub}/{rg}/{name}", self.remove_vm),
            ("PUT", "/vms/{sub}/{rg}/{name}/tags", self.set_tags),
            ("GET", "/vms/{sub}/{rg}/{name}/access", self.vm_access),
            ("GET", "/vms/{sub}/{rg}/{name}/reachability", self.vm_reachability),
            ("PUT", "/policies/{sub}/{rg}/{loc}/{name}", self.put_policy),
            ("DELETE", "/policies/{sub}/{rg}/{loc}/{name}", self.delete_policy),
            ("PUT", "/defender/{sub}", self.set_defender_plan),
            ("GET", "/identities", self.get_identities),
            ("POST", "/identities", self.add_identity),
            ("DELETE", "/identities/{client_id}", self.remove_identity),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, ADMIN_PREFIX + path, self._guard(handler))

    def _guard(self, handler: _Handler) -> _Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if self.token is not None and not hmac.compare_digest(
                request.headers.get(TOKEN_HEADER, ""), self.token
            ):
                return _error(401, "AdminTokenRequired", f"send {TOKEN_HEADER}")
            try:
                return await handler(request)
            except (SettingsError, FaultError, WorldError, ValueError) as exc:
                return _error(400, "InvalidAdminRequest", str(exc))
            except ArmError as exc:
                return web.json_response(exc.to_body(), status=exc.status)

        return guarded

    async def _body(self, request: web.Request) -> dict[str, Any]:
        text = await request.text()
        if not text.strip():
            return {}
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"body is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ValueError("body must be a JSON object")
        return value

    # ----------------------------------------------------------------------- state

    async def health(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    def _clock(self) -> dict[str, Any]:
        clock = self.emulator.clock
        return {
            "now": format_timestamp(clock.now()),
            "offset_seconds": clock.offset.total_seconds(),
        }

    async def state(self, request: web.Request) -> web.StreamResponse:
        emulator = self.emulator
        store = emulator.store
        body = {
            "clock": self._clock(),
            "settings": emulator.settings.to_dict(),
            "subscriptions": [
                {
                    "id": sub.id,
                    "displayName": sub.display_name,
                    "resourceGroups": [
                        {"name": rg.name, "location": rg.location}
                        for rg in store.resource_groups_of(sub.id)
                    ],
                }
                for sub in store.subscriptions.values()
            ],
            "virtualMachines": [self._vm_summary(vm) for vm in store.vms.values()],
            "networkSecurityGroups": [
                {
                    "id": nsg.id,
                    "location": nsg.location,
                    "securityRules": [render_rule(nsg, rule) for rule in nsg.rules.values()],
                }
                for nsg in store.nsgs.values()
            ],
            "jitNetworkAccessPolicies": [emulator.jit.render(p) for p in store.policies.values()],
            "pendingOperations": emulator.operations.pending(),
            "faults": emulator.faults.to_list(),
            "identities": [i.to_dict(include_secret=False) for i in store.identities.values()],
        }
        return web.json_response(body)

    def _vm_summary(self, vm: Vm) -> dict[str, Any]:
        guards = self.emulator.store.guards(vm)
        return {
            "id": vm.id,
            "name": vm.name,
            "subscription": vm.subscription,
            "resourceGroup": vm.resource_group,
            "location": vm.location,
            "tags": dict(vm.tags),
            "privateIpAddresses": sorted({a for g in guards for a in g.addresses})
            or [self.emulator.store.nics[n].private_ip for n in vm.nics],
            "networkSecurityGroups": [g.nsg.id for g in guards],
        }

    async def reset(self, request: web.Request) -> web.StreamResponse:
        self.emulator.reset()
        return web.json_response({"status": "reset"})

    async def get_settings(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.emulator.settings.to_dict())

    async def patch_settings(self, request: web.Request) -> web.StreamResponse:
        self.emulator.settings.update(await self._body(request))
        self.emulator.wake()
        return web.json_response(self.emulator.settings.to_dict())

    async def get_clock(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._clock())

    async def move_clock(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        clock = self.emulator.clock
        if len(body) != 1:
            raise ValueError("send exactly one of advance_seconds, offset_seconds, now")
        if "advance_seconds" in body:
            clock.advance(timedelta(seconds=float(body["advance_seconds"])))
        elif "offset_seconds" in body:
            clock.set_offset(timedelta(seconds=float(body["offset_seconds"])))
        elif "now" in body:
            clock.set_now(parse_timestamp(str(body["now"])))
        else:
            raise ValueError("send exactly one of advance_seconds, offset_seconds, now")
        self.emulator.tick()
        return web.json_response(self._clock())

    async def tick(self, request: web.Request) -> web.StreamResponse:
        # Initiates whose apply delay has passed take effect first, as in the ticker.
        self.emulator.effects.apply_due()
        revoked = self.emulator.effects.expire_due()
        self.emulator.operations.complete_due()
        return web.json_response({"revoked_ports": revoked})

    async def complete_operations(self, request: web.Request) -> web.StreamResponse:
        pending = len(self.emulator.operations.pending())
        self.emulator.operations.complete_all()
        return web.json_response({"completed": pending})

    # ----------------------------------------------------------------------- calls, faults

    async def get_calls(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.emulator.calls.to_dict())

    async def reset_calls(self, request: web.Request) -> web.StreamResponse:
        self.emulator.calls.reset()
        return web.json_response({})

    async def get_faults(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.emulator.faults.to_list())

    async def add_fault(self, request: web.Request) -> web.StreamResponse:
        fault = self.emulator.faults.add(await self._body(request))
        return web.json_response(fault.to_dict(), status=201)

    async def clear_faults(self, request: web.Request) -> web.StreamResponse:
        self.emulator.faults.clear()
        return web.json_response([])

    async def remove_fault(self, request: web.Request) -> web.StreamResponse:
        fault_id = request.match_info["fault_id"]
        faults = self.emulator.faults.faults
        kept = [f for f in faults if str(f.id) != fault_id]
        if len(kept) == len(faults):
            return _error(404, "FaultNotFound", f"no fault {fault_id}")
        faults[:] = kept
        return web.json_response(self.emulator.faults.to_list())

    # ----------------------------------------------------------------------- VMs

    def _vm(self, request: web.Request) -> Vm:
        info = request.match_info
        return self.emulator.store.require_vm(info["sub"], info["rg"], info["name"])

    async def add_vm(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        sub, rg = body.get("subscription"), body.get("resourceGroup")
        if not isinstance(sub, str) or not isinstance(rg, str):
            raise ValueError("send {subscription, resourceGroup, vm: {name, subnet, ...}}")
        spec = parse_vm(body.get("vm"), where="vm")
        vm = self.emulator.store.add_vm(sub, rg, spec, now=self.emulator.clock.now())
        return web.json_response(self._vm_summary(vm), status=201)

    async def remove_vm(self, request: web.Request) -> web.StreamResponse:
        self.emulator.store.remove_vm(self._vm(request))
        return web.json_response({}, status=200)

    async def set_tags(self, request: web.Request) -> web.StreamResponse:
        vm = self._vm(request)
        tags = (await self._body(request)).get("tags")
        if not isinstance(tags, dict):
            raise ValueError('send {"tags": {...}}')
        vm.tags = {str(k): str(v) for k, v in tags.items()}
        vm.etag_counter += 1
        return web.json_response(self._vm_summary(vm))

    async def vm_access(self, request: web.Request) -> web.StreamResponse:
        vm = self._vm(request)
        guards = []
        open_ports = []
        for guard in self.emulator.store.guards(vm):
            nsg = guard.nsg
            deny, allow = [], []
            for rule in nsg.rules.values():
                props = rule.properties
                targets = [
                    props.get("destinationAddressPrefix"),
                    *props.get("destinationAddressPrefixes", []),
                ]
                if not set(guard.addresses) & {t for t in targets if t}:
                    continue
                # JIT's rules are told apart by their owner (the policy that wrote them), not
                # by name: names differ between rule generations (E1) and anyone may name a
                # rule of their own "…JITRule…".
                if rule.jit_policy is None:
                    continue
                if props.get("access") == "Deny":
                    deny.append(render_rule(nsg, rule))
                elif props.get("access") == "Allow":
                    allow.append(render_rule(nsg, rule))
                    open_ports.append(
                        {
                            "port": int(props["destinationPortRange"]),
                            "sources": [props["sourceAddressPrefix"]]
                            if "sourceAddressPrefix" in props
                            else list(props.get("sourceAddressPrefixes", [])),
                            "networkSecurityGroup": nsg.id,
                            "rule": rule.name,
                            "provisioningState": rule.provisioning_state,
                        }
                    )
            guards.append(
                {
                    "networkSecurityGroup": nsg.id,
                    "addresses": guard.addresses,
                    "jitDenyRules": deny,
                    "jitAllowRules": allow,
                }
            )
        return web.json_response({"vm": vm.id, "guards": guards, "openPorts": open_ports})

    async def vm_reachability(self, request: web.Request) -> web.StreamResponse:
        """Whether traffic from ``source`` reaches ``port`` of the VM, with each NSG's
        deciding rule per private address; JIT's allow rules count (the data plane)."""
        vm = self._vm(request)
        query = request.query
        source, port = query.get("source"), query.get("port")
        if not source or not port:
            raise ValueError("send ?source=<IPv4 or service tag>&port=<n>[&protocol=TCP|UDP]")
        source_port = query.get("sourcePort")
        answer = reachability(
            self.emulator.store,
            vm,
            source=source,
            port=int(port),
            protocol=query.get("protocol", "TCP"),
            source_port=int(source_port) if source_port else None,
        )
        return web.json_response(answer)

    # ----------------------------------------------------------------------- policies

    def _policy_params(self, request: web.Request) -> dict[str, str]:
        info = request.match_info
        return {
            "subscriptionId": info["sub"],
            "resourceGroupName": info["rg"],
            "ascLocation": info["loc"],
            "jitNetworkAccessPolicyName": info["name"],
        }

    def _policy_key(self, params: dict[str, str]) -> str:
        return ids.key(
            ids.jit_policy_id(
                params["subscriptionId"],
                params["resourceGroupName"],
                params["ascLocation"],
                params["jitNetworkAccessPolicyName"],
            )
        )

    async def put_policy(self, request: web.Request) -> web.StreamResponse:
        params = self._policy_params(request)
        jit = self.emulator.jit
        kind, vms = parse_policy(
            await self._body(request),
            store=self.emulator.store,
            subscription=params["subscriptionId"],
            name=params["jitNetworkAccessPolicyName"],
        )
        key = self._policy_key(params)
        policy = jit.apply_policy(key, self.emulator.store.policies.get(key), params, kind, vms)
        return web.json_response(jit.render(policy))

    async def delete_policy(self, request: web.Request) -> web.StreamResponse:
        params = self._policy_params(request)
        key = self._policy_key(params)
        if key not in self.emulator.store.policies:
            return _error(404, "PolicyNotFound", "no such JIT policy")
        if request.query.get("remove_rules", "true").lower() == "false":
            self.emulator.store.policies.pop(key)
        else:
            self.emulator.jit.remove_policy(key)
        return web.json_response({})

    # ----------------------------------------------------------------------- Defender plans

    async def set_defender_plan(self, request: web.Request) -> web.StreamResponse:
        """Defender for Servers on a subscription (E12): Standard/P2 unless set otherwise."""
        body = await self._body(request)
        plan = parse_plan(body.get("pricing_tier"), body.get("sub_plan"))
        subscription = request.match_info["sub"]
        self.emulator.pricing.set_servers_plan(subscription, plan)
        return web.json_response(
            {
                "subscription": subscription,
                "pricingTier": plan.pricing_tier,
                "subPlan": plan.sub_plan,
            }
        )

    # ----------------------------------------------------------------------- identities

    async def get_identities(self, request: web.Request) -> web.StreamResponse:
        identities = self.emulator.store.identities.values()
        return web.json_response([i.to_dict(include_secret=False) for i in identities])

    async def add_identity(self, request: web.Request) -> web.StreamResponse:
        """Add an identity (world-file shape), or replace the one with its clientId: a
        changed ``scopes`` applies to the tokens it already holds, as a role assignment."""
        identity = parse_identity(await self._body(request))
        identities = self.emulator.store.identities
        status = 200 if identity.key in identities else 201
        identities[identity.key] = identity
        return web.json_response(identity.to_dict(include_secret=False), status=status)

    async def remove_identity(self, request: web.Request) -> web.StreamResponse:
        client_id = request.match_info["client_id"]
        if self.emulator.store.identities.pop(client_id.lower(), None) is None:
            return _error(404, "IdentityNotFound", f"no identity with clientId {client_id}")
        return web.json_response({})
