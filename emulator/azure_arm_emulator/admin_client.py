"""Typed clients for the emulator's ``/_emulator`` admin API (tests, demo, benchmarks).

:class:`AdminClient` is async (aiohttp) and must be closed (``async with`` or ``close()``);
:class:`SyncAdminClient` uses urllib and holds no connection. Both take the emulator's base
URL (``https://127.0.0.1:PORT``) and its CA bundle, and expose the same methods::

    admin = AdminClient(base_url, ca_path)
    await admin.reset()
    await admin.advance_clock(timedelta(hours=2))       # jump past endTimeUtc
    await admin.update_settings(never_revoke=True)      # Azure forgets to revoke
    await admin.add_fault("JitNetworkAccessPolicies_Initiate", status=429, retry_after=1, times=2)
    counts = await admin.calls()                        # {"SecurityRules_Delete": {...}}
    access = await admin.vm_access(sub, "rg-web", "vm-web-01")   # open ports, JIT rules
    path = await admin.reachability(sub, "rg-web", "vm-web-01", source="198.51.100.7", port=22)
    app = await admin.add_identity(secret="s3cret", scopes=[f"/subscriptions/{sub}"])

The requests themselves are built in :mod:`.admin_calls`.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import aiohttp

from azure_arm_emulator.admin import ADMIN_PREFIX, TOKEN_HEADER
from azure_arm_emulator.admin_calls import (
    DEFAULT_TENANT_ID,
    Call,
    Calls,
    count_calls,
    fault_spec,
    identity_spec,
)
from azure_arm_emulator.clock import format_timestamp, parse_timestamp


class AdminError(RuntimeError):
    """The admin API answered with an error status."""

    def __init__(self, status: int, body: object) -> None:
        super().__init__(f"emulator admin API answered {status}: {body}")
        self.status = status
        self.body = body


class AdminClient:
    """Async client; one aiohttp session, closed by :meth:`close` (or ``async with``)."""

    def __init__(self, base_url: str, ca_path: Path | str, *, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._ssl = ssl.create_default_context(cafile=str(ca_path))
        self._headers = {TOKEN_HEADER: token} if token else {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _send(self, call: Call) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers)
        async with self._session.request(
            call.method,
            f"{self.base_url}{ADMIN_PREFIX}{call.path}",
            json=call.body,
            ssl=self._ssl,
        ) as response:
            body = await response.json(content_type=None)
            if response.status >= 400:
                raise AdminError(response.status, body)
            return body

    async def health(self) -> bool:
        return bool((await self._send(Calls.health))["status"] == "ok")

    async def state(self) -> dict[str, Any]:
        """Everything: clock, settings, VMs, NSGs with rules, policies, pending LROs, faults."""
        return cast(dict[str, Any], await self._send(Calls.state))

    async def reset(self) -> None:
        """Back to the world, the start settings and the start clock; no faults, no counts."""
        await self._send(Calls.reset)

    async def settings(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send(Calls.settings))

    async def update_settings(self, **changes: Any) -> dict[str, Any]:
        """E.g. ``never_revoke=True``, ``revoke_lag_seconds=30``, ``page_size=2``."""
        return cast(dict[str, Any], await self._send(Calls.update_settings(changes)))

    async def now(self) -> datetime:
        return parse_timestamp((await self._send(Calls.clock))["now"])

    async def advance_clock(self, delta: timedelta) -> datetime:
        """Jump the emulator clock; what is due is revoked before this returns."""
        body = {"advance_seconds": delta.total_seconds()}
        return parse_timestamp((await self._send(Calls.move_clock(body)))["now"])

    async def set_clock(self, instant: datetime) -> datetime:
        body = {"now": format_timestamp(instant)}
        return parse_timestamp((await self._send(Calls.move_clock(body)))["now"])

    async def reset_clock(self) -> datetime:
        return parse_timestamp((await self._send(Calls.move_clock({"offset_seconds": 0})))["now"])

    async def tick(self) -> int:
        """Revoke what is due now; the number of ports revoked."""
        return int((await self._send(Calls.tick))["revoked_ports"])

    async def complete_operations(self) -> int:
        return int((await self._send(Calls.complete_operations))["completed"])

    async def calls(self) -> dict[str, Any]:
        """``{operation_id: {"total", "by_method": {...}, "by_status": {...}}}``."""
        return cast(dict[str, Any], await self._send(Calls.calls))

    async def call_count(self, operation: str, *, method: str | None = None) -> int:
        return count_calls(await self.calls(), operation, method)

    async def reset_calls(self) -> None:
        await self._send(Calls.reset_calls)

    async def add_fault(
        self,
        operation: str,
        *,
        kind: str = "status",
        times: int | None = 1,
        method: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        latency_seconds: float | None = None,
        phase: str = "before",
        code: str | None = None,
        message: str | None = None,
        subscription: str | None = None,
    ) -> dict[str, Any]:
        """Inject a fault for ``operation`` (an operation id or ``*``); see :mod:`.faults`."""
        spec = fault_spec(
            operation,
            kind=kind,
            times=times,
            method=method,
            status=status,
            retry_after=retry_after,
            latency_seconds=latency_seconds,
            phase=phase,
            code=code,
            message=message,
            subscription=subscription,
        )
        return cast(dict[str, Any], await self._send(Calls.add_fault(spec)))

    async def faults(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._send(Calls.faults))

    async def clear_faults(self) -> None:
        await self._send(Calls.clear_faults)

    async def add_vm(
        self, subscription: str, resource_group: str, vm: dict[str, Any]
    ) -> dict[str, Any]:
        """Add a VM (world-file shape: name, subnet, networkSecurityGroup, tags, ...)."""
        return cast(
            dict[str, Any], await self._send(Calls.add_vm(subscription, resource_group, vm))
        )

    async def remove_vm(self, subscription: str, resource_group: str, name: str) -> None:
        await self._send(Calls.remove_vm(subscription, resource_group, name))

    async def set_vm_tags(
        self, subscription: str, resource_group: str, name: str, tags: dict[str, str]
    ) -> dict[str, Any]:
        call = Calls.set_vm_tags(subscription, resource_group, name, tags)
        return cast(dict[str, Any], await self._send(call))

    async def vm_access(self, subscription: str, resource_group: str, name: str) -> dict[str, Any]:
        """``{"guards": [{networkSecurityGroup, addresses, jitDenyRules, jitAllowRules}],
        "openPorts": [{port, sources, networkSecurityGroup, rule, provisioningState}]}``."""
        call = Calls.vm_access(subscription, resource_group, name)
        return cast(dict[str, Any], await self._send(call))

    async def reachability(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        *,
        source: str,
        port: int,
        protocol: str = "TCP",
        source_port: int | None = None,
    ) -> dict[str, Any]:
        """Can traffic from ``source`` (IPv4 address or service tag) reach ``port``?
        ``{"reachable", "paths": [{privateIpAddress, reachable, sourcePort, subnet,
        networkInterface}]}``, each level ``{networkSecurityGroup, rule, priority, access,
        default, jit}`` or None without an NSG; JIT's allow rules count. Without
        ``source_port``: from some source port."""
        call = Calls.reachability(
            subscription,
            resource_group,
            name,
            source=source,
            port=port,
            protocol=protocol,
            source_port=source_port,
        )
        return cast(dict[str, Any], await self._send(call))

    async def can_reach(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        *,
        source: str,
        port: int,
        protocol: str = "TCP",
    ) -> bool:
        answer = await self.reachability(
            subscription, resource_group, name, source=source, port=port, protocol=protocol
        )
        return bool(answer["reachable"])

    async def put_policy_out_of_band(
        self, subscription: str, resource_group: str, location: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Create/replace a JIT policy as someone else would (not counted, no faults)."""
        call = Calls.put_policy(subscription, resource_group, location, name, body)
        return cast(dict[str, Any], await self._send(call))

    async def delete_policy_out_of_band(
        self,
        subscription: str,
        resource_group: str,
        location: str,
        name: str,
        *,
        remove_rules: bool = True,
    ) -> None:
        call = Calls.delete_policy(
            subscription, resource_group, location, name, remove_rules=remove_rules
        )
        await self._send(call)

    async def set_defender_plan(
        self, subscription: str, pricing_tier: str, sub_plan: str | None = None
    ) -> dict[str, Any]:
        """Defender for Servers on ``subscription`` as Microsoft.Security/pricings shows it:
        ``("Standard", "P2")`` is the default JIT needs (E12); ``("Standard", "P1")`` or
        ``("Free", None)`` model a subscription without Plan 2."""
        call = Calls.set_defender_plan(subscription, pricing_tier, sub_plan)
        return cast(dict[str, Any], await self._send(call))

    async def identities(self) -> list[dict[str, Any]]:
        """The Entra identities (world-file shape, secrets masked)."""
        return cast(list[dict[str, Any]], await self._send(Calls.identities))

    async def add_identity(
        self,
        *,
        client_id: str | None = None,
        tenant_id: str = DEFAULT_TENANT_ID,
        secret: str | None = None,
        federated_subjects: Sequence[str] = (),
        federated_issuer: str | None = None,
        scopes: Sequence[str] = (),
        display_name: str | None = None,
        object_id: str | None = None,
    ) -> dict[str, Any]:
        """Add (or replace, by client id) an Entra identity; ``client_id`` defaults to a new
        GUID. Returns it as stored (``clientId``, ``objectId``, ...; the secret masked)."""
        spec = identity_spec(
            client_id=client_id or str(uuid.uuid4()),
            tenant_id=tenant_id,
            secret=secret,
            federated_subjects=federated_subjects,
            federated_issuer=federated_issuer,
            scopes=scopes,
            display_name=display_name,
            object_id=object_id,
        )
        return cast(dict[str, Any], await self._send(Calls.add_identity(spec)))

    async def remove_identity(self, client_id: str) -> None:
        await self._send(Calls.remove_identity(client_id))


class SyncAdminClient:
    """Blocking client (urllib), same methods as :class:`AdminClient`. Never use it on the
    event loop that serves an in-process emulator: it would wait for itself."""

    def __init__(self, base_url: str, ca_path: Path | str, *, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._ssl = ssl.create_default_context(cafile=str(ca_path))
        self._headers = {
            "Content-Type": "application/json",
            **({TOKEN_HEADER: token} if token else {}),
        }

    def _send(self, call: Call) -> Any:
        data = json.dumps(call.body).encode() if call.body is not None else None
        request = urllib.request.Request(  # noqa: S310 - https to the emulator only
            f"{self.base_url}{ADMIN_PREFIX}{call.path}",
            data=data,
            method=call.method,
            headers=self._headers,
        )
        try:
            with urllib.request.urlopen(request, context=self._ssl, timeout=30) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read()
            raise AdminError(exc.code, json.loads(body or b"null")) from None

    def health(self) -> bool:
        return bool(self._send(Calls.health)["status"] == "ok")

    def state(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(Calls.state))

    def reset(self) -> None:
        self._send(Calls.reset)

    def settings(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(Calls.settings))

    def update_settings(self, **changes: Any) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(Calls.update_settings(changes)))

    def now(self) -> datetime:
        return parse_timestamp(self._send(Calls.clock)["now"])

    def advance_clock(self, delta: timedelta) -> datetime:
        body = {"advance_seconds": delta.total_seconds()}
        return parse_timestamp(self._send(Calls.move_clock(body))["now"])

    def set_clock(self, instant: datetime) -> datetime:
        body = {"now": format_timestamp(instant)}
        return parse_timestamp(self._send(Calls.move_clock(body))["now"])

    def reset_clock(self) -> datetime:
        return parse_timestamp(self._send(Calls.move_clock({"offset_seconds": 0}))["now"])

    def tick(self) -> int:
        return int(self._send(Calls.tick)["revoked_ports"])

    def complete_operations(self) -> int:
        return int(self._send(Calls.complete_operations)["completed"])

    def calls(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(Calls.calls))

    def call_count(self, operation: str, *, method: str | None = None) -> int:
        return count_calls(self.calls(), operation, method)

    def reset_calls(self) -> None:
        self._send(Calls.reset_calls)

    def add_fault(
        self,
        operation: str,
        *,
        kind: str = "status",
        times: int | None = 1,
        method: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        latency_seconds: float | None = None,
        phase: str = "before",
        code: str | None = None,
        message: str | None = None,
        subscription: str | None = None,
    ) -> dict[str, Any]:
        spec = fault_spec(
            operation,
            kind=kind,
            times=times,
            method=method,
            status=status,
            retry_after=retry_after,
            latency_seconds=latency_seconds,
            phase=phase,
            code=code,
            message=message,
            subscription=subscription,
        )
        return cast(dict[str, Any], self._send(Calls.add_fault(spec)))

    def faults(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._send(Calls.faults))

    def clear_faults(self) -> None:
        self._send(Calls.clear_faults)

    def add_vm(self, subscription: str, resource_group: str, vm: dict[str, Any]) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(Calls.add_vm(subscription, resource_group, vm)))

    def remove_vm(self, subscription: str, resource_group: str, name: str) -> None:
        self._send(Calls.remove_vm(subscription, resource_group, name))

    def set_vm_tags(
        self, subscription: str, resource_group: str, name: str, tags: dict[str, str]
    ) -> dict[str, Any]:
        call = Calls.set_vm_tags(subscription, resource_group, name, tags)
        return cast(dict[str, Any], self._send(call))

    def vm_access(self, subscription: str, resource_group: str, name: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(Calls.vm_access(subscription, resource_group, name)))

    def reachability(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        *,
        source: str,
        port: int,
        protocol: str = "TCP",
        source_port: int | None = None,
    ) -> dict[str, Any]:
        call = Calls.reachability(
            subscription,
            resource_group,
            name,
            source=source,
            port=port,
            protocol=protocol,
            source_port=source_port,
        )
        return cast(dict[str, Any], self._send(call))

    def can_reach(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        *,
        source: str,
        port: int,
        protocol: str = "TCP",
    ) -> bool:
        answer = self.reachability(
            subscription, resource_group, name, source=source, port=port, protocol=protocol
        )
        return bool(answer["reachable"])

    def put_policy_out_of_band(
        self, subscription: str, resource_group: str, location: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        call = Calls.put_policy(subscription, resource_group, location, name, body)
        return cast(dict[str, Any], self._send(call))

    def delete_policy_out_of_band(
        self,
        subscription: str,
        resource_group: str,
        location: str,
        name: str,
        *,
        remove_rules: bool = True,
    ) -> None:
        call = Calls.delete_policy(
            subscription, resource_group, location, name, remove_rules=remove_rules
        )
        self._send(call)

    def set_defender_plan(
        self, subscription: str, pricing_tier: str, sub_plan: str | None = None
    ) -> dict[str, Any]:
        call = Calls.set_defender_plan(subscription, pricing_tier, sub_plan)
        return cast(dict[str, Any], self._send(call))

    def identities(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._send(Calls.identities))

    def add_identity(
        self,
        *,
        client_id: str | None = None,
        tenant_id: str = DEFAULT_TENANT_ID,
        secret: str | None = None,
        federated_subjects: Sequence[str] = (),
        federated_issuer: str | None = None,
        scopes: Sequence[str] = (),
        display_name: str | None = None,
        object_id: str | None = None,
    ) -> dict[str, Any]:
        spec = identity_spec(
            client_id=client_id or str(uuid.uuid4()),
            tenant_id=tenant_id,
            secret=secret,
            federated_subjects=federated_subjects,
            federated_issuer=federated_issuer,
            scopes=scopes,
            display_name=display_name,
            object_id=object_id,
        )
        return cast(dict[str, Any], self._send(Calls.add_identity(spec)))

    def remove_identity(self, client_id: str) -> None:
        self._send(Calls.remove_identity(client_id))
