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
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import quote

import aiohttp

from azure_jit_operator.emulator.admin import ADMIN_PREFIX, TOKEN_HEADER
from azure_jit_operator.emulator.clock import format_timestamp, parse_timestamp


class AdminError(RuntimeError):
    """The admin API answered with an error status."""

    def __init__(self, status: int, body: object) -> None:
        super().__init__(f"emulator admin API answered {status}: {body}")
        self.status = status
        self.body = body


@dataclass(frozen=True, slots=True)
class Call:
    """One admin request: method, path below ``/_emulator`` and JSON body."""

    method: str
    path: str
    body: dict[str, Any] | None = None


def _fault(
    operation: str,
    *,
    kind: str,
    times: int | None,
    method: str | None,
    status: int | None,
    retry_after: int | None,
    latency_seconds: float | None,
    phase: str,
    code: str | None,
    message: str | None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"operation": operation, "kind": kind, "times": times, "phase": phase}
    for key, value in (
        ("method", method),
        ("status", status),
        ("retry_after", retry_after),
        ("latency_seconds", latency_seconds),
        ("code", code),
        ("message", message),
    ):
        if value is not None:
            spec[key] = value
    return spec


def _vm_path(subscription: str, resource_group: str, name: str) -> str:
    return f"/vms/{quote(subscription)}/{quote(resource_group)}/{quote(name)}"


def _policy_path(subscription: str, resource_group: str, location: str, name: str) -> str:
    parts = (subscription, resource_group, location, name)
    return "/policies/" + "/".join(quote(p) for p in parts)


class _Calls:
    """The request behind each client method, shared by the async and the sync client."""

    health = Call("GET", "/health")
    state = Call("GET", "/state")
    reset = Call("POST", "/reset")
    settings = Call("GET", "/settings")
    clock = Call("GET", "/clock")
    tick = Call("POST", "/tick")
    complete_operations = Call("POST", "/operations/complete")
    calls = Call("GET", "/calls")
    reset_calls = Call("DELETE", "/calls")
    faults = Call("GET", "/faults")
    clear_faults = Call("DELETE", "/faults")

    @staticmethod
    def update_settings(changes: dict[str, Any]) -> Call:
        return Call("PATCH", "/settings", changes)

    @staticmethod
    def move_clock(body: dict[str, Any]) -> Call:
        return Call("POST", "/clock", body)

    @staticmethod
    def add_fault(spec: dict[str, Any]) -> Call:
        return Call("POST", "/faults", spec)

    @staticmethod
    def add_vm(subscription: str, resource_group: str, vm: dict[str, Any]) -> Call:
        body = {"subscription": subscription, "resourceGroup": resource_group, "vm": vm}
        return Call("POST", "/vms", body)

    @staticmethod
    def remove_vm(subscription: str, resource_group: str, name: str) -> Call:
        return Call("DELETE", _vm_path(subscription, resource_group, name))

    @staticmethod
    def set_vm_tags(
        subscription: str, resource_group: str, name: str, tags: dict[str, str]
    ) -> Call:
        return Call("PUT", _vm_path(subscription, resource_group, name) + "/tags", {"tags": tags})

    @staticmethod
    def vm_access(subscription: str, resource_group: str, name: str) -> Call:
        return Call("GET", _vm_path(subscription, resource_group, name) + "/access")

    @staticmethod
    def put_policy(
        subscription: str, resource_group: str, location: str, name: str, body: dict[str, Any]
    ) -> Call:
        return Call("PUT", _policy_path(subscription, resource_group, location, name), body)

    @staticmethod
    def delete_policy(
        subscription: str, resource_group: str, location: str, name: str, *, remove_rules: bool
    ) -> Call:
        suffix = "" if remove_rules else "?remove_rules=false"
        return Call("DELETE", _policy_path(subscription, resource_group, location, name) + suffix)


def _count(calls: dict[str, Any], operation: str, method: str | None) -> int:
    entry = calls.get(operation)
    if entry is None:
        return 0
    return int(entry["by_method"].get(method.upper(), 0) if method else entry["total"])


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
        return bool((await self._send(_Calls.health))["status"] == "ok")

    async def state(self) -> dict[str, Any]:
        """Everything: clock, settings, VMs, NSGs with rules, policies, pending LROs, faults."""
        return cast(dict[str, Any], await self._send(_Calls.state))

    async def reset(self) -> None:
        """Back to the world, the start settings and the start clock; no faults, no counts."""
        await self._send(_Calls.reset)

    async def settings(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send(_Calls.settings))

    async def update_settings(self, **changes: Any) -> dict[str, Any]:
        """E.g. ``never_revoke=True``, ``revoke_lag_seconds=30``, ``page_size=2``."""
        return cast(dict[str, Any], await self._send(_Calls.update_settings(changes)))

    async def now(self) -> datetime:
        return parse_timestamp((await self._send(_Calls.clock))["now"])

    async def advance_clock(self, delta: timedelta) -> datetime:
        """Jump the emulator clock; what is due is revoked before this returns."""
        body = {"advance_seconds": delta.total_seconds()}
        return parse_timestamp((await self._send(_Calls.move_clock(body)))["now"])

    async def set_clock(self, instant: datetime) -> datetime:
        body = {"now": format_timestamp(instant)}
        return parse_timestamp((await self._send(_Calls.move_clock(body)))["now"])

    async def reset_clock(self) -> datetime:
        return parse_timestamp((await self._send(_Calls.move_clock({"offset_seconds": 0})))["now"])

    async def tick(self) -> int:
        """Revoke what is due now; the number of ports revoked."""
        return int((await self._send(_Calls.tick))["revoked_ports"])

    async def complete_operations(self) -> int:
        return int((await self._send(_Calls.complete_operations))["completed"])

    async def calls(self) -> dict[str, Any]:
        """``{operation_id: {"total", "by_method": {...}, "by_status": {...}}}``."""
        return cast(dict[str, Any], await self._send(_Calls.calls))

    async def call_count(self, operation: str, *, method: str | None = None) -> int:
        return _count(await self.calls(), operation, method)

    async def reset_calls(self) -> None:
        await self._send(_Calls.reset_calls)

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
    ) -> dict[str, Any]:
        """Inject a fault for ``operation`` (an operation id or ``*``); see :mod:`.faults`."""
        spec = _fault(
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
        )
        return cast(dict[str, Any], await self._send(_Calls.add_fault(spec)))

    async def faults(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._send(_Calls.faults))

    async def clear_faults(self) -> None:
        await self._send(_Calls.clear_faults)

    async def add_vm(
        self, subscription: str, resource_group: str, vm: dict[str, Any]
    ) -> dict[str, Any]:
        """Add a VM (world-file shape: name, subnet, networkSecurityGroup, tags, ...)."""
        return cast(
            dict[str, Any], await self._send(_Calls.add_vm(subscription, resource_group, vm))
        )

    async def remove_vm(self, subscription: str, resource_group: str, name: str) -> None:
        await self._send(_Calls.remove_vm(subscription, resource_group, name))

    async def set_vm_tags(
        self, subscription: str, resource_group: str, name: str, tags: dict[str, str]
    ) -> dict[str, Any]:
        call = _Calls.set_vm_tags(subscription, resource_group, name, tags)
        return cast(dict[str, Any], await self._send(call))

    async def vm_access(self, subscription: str, resource_group: str, name: str) -> dict[str, Any]:
        """``{"guards": [{networkSecurityGroup, addresses, jitDenyRules, jitAllowRules}],
        "openPorts": [{port, sources, networkSecurityGroup, rule, provisioningState}]}``."""
        call = _Calls.vm_access(subscription, resource_group, name)
        return cast(dict[str, Any], await self._send(call))

    async def put_policy_out_of_band(
        self, subscription: str, resource_group: str, location: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Create/replace a JIT policy as someone else would (not counted, no faults)."""
        call = _Calls.put_policy(subscription, resource_group, location, name, body)
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
        call = _Calls.delete_policy(
            subscription, resource_group, location, name, remove_rules=remove_rules
        )
        await self._send(call)


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
        return bool(self._send(_Calls.health)["status"] == "ok")

    def state(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(_Calls.state))

    def reset(self) -> None:
        self._send(_Calls.reset)

    def settings(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(_Calls.settings))

    def update_settings(self, **changes: Any) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(_Calls.update_settings(changes)))

    def now(self) -> datetime:
        return parse_timestamp(self._send(_Calls.clock)["now"])

    def advance_clock(self, delta: timedelta) -> datetime:
        body = {"advance_seconds": delta.total_seconds()}
        return parse_timestamp(self._send(_Calls.move_clock(body))["now"])

    def set_clock(self, instant: datetime) -> datetime:
        body = {"now": format_timestamp(instant)}
        return parse_timestamp(self._send(_Calls.move_clock(body))["now"])

    def reset_clock(self) -> datetime:
        return parse_timestamp(self._send(_Calls.move_clock({"offset_seconds": 0}))["now"])

    def tick(self) -> int:
        return int(self._send(_Calls.tick)["revoked_ports"])

    def complete_operations(self) -> int:
        return int(self._send(_Calls.complete_operations)["completed"])

    def calls(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(_Calls.calls))

    def call_count(self, operation: str, *, method: str | None = None) -> int:
        return _count(self.calls(), operation, method)

    def reset_calls(self) -> None:
        self._send(_Calls.reset_calls)

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
    ) -> dict[str, Any]:
        spec = _fault(
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
        )
        return cast(dict[str, Any], self._send(_Calls.add_fault(spec)))

    def faults(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._send(_Calls.faults))

    def clear_faults(self) -> None:
        self._send(_Calls.clear_faults)

    def add_vm(self, subscription: str, resource_group: str, vm: dict[str, Any]) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(_Calls.add_vm(subscription, resource_group, vm)))

    def remove_vm(self, subscription: str, resource_group: str, name: str) -> None:
        self._send(_Calls.remove_vm(subscription, resource_group, name))

    def set_vm_tags(
        self, subscription: str, resource_group: str, name: str, tags: dict[str, str]
    ) -> dict[str, Any]:
        call = _Calls.set_vm_tags(subscription, resource_group, name, tags)
        return cast(dict[str, Any], self._send(call))

    def vm_access(self, subscription: str, resource_group: str, name: str) -> dict[str, Any]:
        return cast(
            dict[str, Any], self._send(_Calls.vm_access(subscription, resource_group, name))
        )

    def put_policy_out_of_band(
        self, subscription: str, resource_group: str, location: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        call = _Calls.put_policy(subscription, resource_group, location, name, body)
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
        call = _Calls.delete_policy(
            subscription, resource_group, location, name, remove_rules=remove_rules
        )
        self._send(call)
