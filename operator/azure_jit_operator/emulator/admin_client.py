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
    """The requests behind each method, shared by the async and sync clients."""

    @staticmethod
    def state() -> Call:
        return Call("GET", "/state")

    @staticmethod
    def reset() -> Call:
        return Call("POST", "/reset")

    @staticmethod
    def settings(changes: dict[str, Any] | None = None) -> Call:
        return Call("PATCH", "/settings", changes) if changes else Call("GET", "/settings")

    @staticmethod
    def clock(body: dict[str, Any] | None = None) -> Call:
        return Call("POST", "/clock", body) if body else Call("GET", "/clock")

    @staticmethod
    def advance(delta: timedelta) -> Call:
        return Call("POST", "/clock", {"advance_seconds": delta.total_seconds()})

    @staticmethod
    def set_now(instant: datetime) -> Call:
        return Call("POST", "/clock", {"now": format_timestamp(instant)})


class AdminClient:
    """Async client; one aiohttp session, closed by :meth:`close`."""

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
        return bool((await self._send(Call("GET", "/health")))["status"] == "ok")

    async def state(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send(_Calls.state()))

    async def reset(self) -> None:
        await self._send(_Calls.reset())

    async def settings(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send(_Calls.settings()))

    async def update_settings(self, **changes: Any) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send(_Calls.settings(changes)))

    async def now(self) -> datetime:
        return parse_timestamp((await self._send(_Calls.clock()))["now"])

    async def advance_clock(self, delta: timedelta) -> datetime:
        return parse_timestamp((await self._send(_Calls.advance(delta)))["now"])

    async def set_clock(self, instant: datetime) -> datetime:
        return parse_timestamp((await self._send(_Calls.set_now(instant)))["now"])

    async def reset_clock(self) -> datetime:
        return parse_timestamp((await self._send(_Calls.clock({"offset_seconds": 0})))["now"])

    async def tick(self) -> int:
        return int((await self._send(Call("POST", "/tick")))["revoked_ports"])

    async def complete_operations(self) -> int:
        return int((await self._send(Call("POST", "/operations/complete")))["completed"])

    async def calls(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._send(Call("GET", "/calls")))

    async def call_count(self, operation: str, *, method: str | None = None) -> int:
        entry = (await self.calls()).get(operation)
        if entry is None:
            return 0
        return int(entry["by_method"].get(method.upper(), 0) if method else entry["total"])

    async def reset_calls(self) -> None:
        await self._send(Call("DELETE", "/calls"))

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
        return cast(dict[str, Any], await self._send(Call("POST", "/faults", spec)))

    async def faults(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._send(Call("GET", "/faults")))

    async def clear_faults(self) -> None:
        await self._send(Call("DELETE", "/faults"))

    async def add_vm(
        self, subscription: str, resource_group: str, vm: dict[str, Any]
    ) -> dict[str, Any]:
        body = {"subscription": subscription, "resourceGroup": resource_group, "vm": vm}
        return cast(dict[str, Any], await self._send(Call("POST", "/vms", body)))

    async def remove_vm(self, subscription: str, resource_group: str, name: str) -> None:
        await self._send(Call("DELETE", _vm_path(subscription, resource_group, name)))

    async def set_vm_tags(
        self, subscription: str, resource_group: str, name: str, tags: dict[str, str]
    ) -> dict[str, Any]:
        path = _vm_path(subscription, resource_group, name) + "/tags"
        return cast(dict[str, Any], await self._send(Call("PUT", path, {"tags": tags})))

    async def vm_access(self, subscription: str, resource_group: str, name: str) -> dict[str, Any]:
        path = _vm_path(subscription, resource_group, name) + "/access"
        return cast(dict[str, Any], await self._send(Call("GET", path)))

    async def put_policy_out_of_band(
        self, subscription: str, resource_group: str, location: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        path = _policy_path(subscription, resource_group, location, name)
        return cast(dict[str, Any], await self._send(Call("PUT", path, body)))

    async def delete_policy_out_of_band(
        self,
        subscription: str,
        resource_group: str,
        location: str,
        name: str,
        *,
        remove_rules: bool = True,
    ) -> None:
        path = _policy_path(subscription, resource_group, location, name)
        suffix = "" if remove_rules else "?remove_rules=false"
        await self._send(Call("DELETE", path + suffix))


class SyncAdminClient:
    """Blocking client (urllib); for sync tests and scripts. Never use it on the event loop
    that runs an in-process emulator: it would wait for itself."""

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
        return bool(self._send(Call("GET", "/health"))["status"] == "ok")

    def state(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(_Calls.state()))

    def reset(self) -> None:
        self._send(_Calls.reset())

    def settings(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(_Calls.settings()))

    def update_settings(self, **changes: Any) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(_Calls.settings(changes)))

    def now(self) -> datetime:
        return parse_timestamp(self._send(_Calls.clock())["now"])

    def advance_clock(self, delta: timedelta) -> datetime:
        return parse_timestamp(self._send(_Calls.advance(delta))["now"])

    def set_clock(self, instant: datetime) -> datetime:
        return parse_timestamp(self._send(_Calls.set_now(instant))["now"])

    def calls(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._send(Call("GET", "/calls")))

    def call_count(self, operation: str, *, method: str | None = None) -> int:
        entry = self.calls().get(operation)
        if entry is None:
            return 0
        return int(entry["by_method"].get(method.upper(), 0) if method else entry["total"])

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
        return cast(dict[str, Any], self._send(Call("POST", "/faults", spec)))

    def clear_faults(self) -> None:
        self._send(Call("DELETE", "/faults"))

    def vm_access(self, subscription: str, resource_group: str, name: str) -> dict[str, Any]:
        path = _vm_path(subscription, resource_group, name) + "/access"
        return cast(dict[str, Any], self._send(Call("GET", path)))

    def set_vm_tags(
        self, subscription: str, resource_group: str, name: str, tags: dict[str, str]
    ) -> dict[str, Any]:
        path = _vm_path(subscription, resource_group, name) + "/tags"
        return cast(dict[str, Any], self._send(Call("PUT", path, {"tags": tags})))
