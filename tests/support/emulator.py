"""The Azure emulator for tests: as a subprocess through the real CLI, or in-process.

Loaded as a pytest plugin from ``tests/conftest.py``. Fixtures:

- ``emulator_process`` (session): ``azure-arm-emulator --port 0`` started through the
  real CLI with the default world; an :class:`EmulatorProcess`.
- ``emulator_endpoint`` (function, sync): the session emulator, reset to its world first;
  an :class:`EmulatorEndpoint` (``base_url``, ``ca_path``, ``sdk_kwargs()``,
  ``credential()``, ``async_credential()``, ``admin()`` / ``sync_admin()``).
- ``emulator`` (function, async): the same, as an :class:`EmulatorHandle` with an open async
  :class:`~azure_arm_emulator.admin_client.AdminClient` (closed afterwards).
- ``emulator_in_process`` (function, async): a fresh emulator served on the test's own
  event loop (default world); :func:`run_emulator_in_process` takes any world/settings.

SDK clients: ``SecurityCenter(endpoint.credential(), SUBSCRIPTION, **endpoint.sdk_kwargs())``.

Timing: the emulator's defaults model real Azure's few seconds before an initiate takes
effect and before a policy PUT settles (E6, E7). Emulators started here instead default to
no delay for either (:data:`TEST_TIMING_ARGS`, :func:`quick_settings`), so the suite's timings
stay what they were; a test that wants Azure's delays asks for them (flags, settings, or
``admin.update_settings(apply_delay_seconds=…)``; ``reset`` returns to the start settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from azure_arm_emulator.admin_client import AdminClient, SyncAdminClient
from azure_arm_emulator.core import Emulator
from azure_arm_emulator.server import EmulatorServer
from azure_arm_emulator.settings import EmulatorSettings
from azure_arm_emulator.world import World, load_world
from azure_jit_devtools.localcluster.processes import wait_for as wait_until
from tests.support.credentials import (
    DEFAULT_TOKEN,
    AsyncStaticTokenCredential,
    StaticTokenCredential,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
OPERATOR_DIR = REPO_ROOT / "operator"
EMULATOR_DIR = REPO_ROOT / "emulator"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
SECOND_SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"
READY = re.compile(r"^emulator ready: (?P<url>https://\S+) ca=(?P<ca>\S+) admin=\S+$", re.M)
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

# Given before the caller's arguments, so a caller's own --apply-delay wins (argparse: last).
TEST_TIMING_ARGS = ("--apply-delay", "0", "--policy-settle", "0")

_T = TypeVar("_T")


def quick_settings(**changes: Any) -> EmulatorSettings:
    """Emulator settings for tests: no apply delay, no policy settling, plus ``changes``."""
    settings = EmulatorSettings(apply_delay_seconds=0.0, policy_settle_seconds=0.0)
    settings.update(changes)
    return settings


async def eventually(
    predicate: Callable[[], Awaitable[_T]],
    *,
    within: float = 5.0,
    interval: float = 0.02,
    what: str = "condition",
) -> _T:
    """Await ``predicate`` until it returns something truthy; fail loudly after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {within:g}s")
        await asyncio.sleep(interval)  # polling until a deadline (noqa: sleep-ok)


@dataclass(frozen=True)
class EmulatorEndpoint:
    """Where an emulator listens and how to trust and authenticate to it."""

    base_url: str
    ca_path: Path

    @property
    def admin_url(self) -> str:
        return f"{self.base_url}/_emulator"

    def sdk_kwargs(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for any azure-mgmt-* client (sync or aio)."""
        return {"base_url": self.base_url, "connection_verify": str(self.ca_path), **extra}

    def credential(self, token: str = DEFAULT_TOKEN) -> StaticTokenCredential:
        return StaticTokenCredential(token)

    def async_credential(self, token: str = DEFAULT_TOKEN) -> AsyncStaticTokenCredential:
        return AsyncStaticTokenCredential(token)

    def admin(self) -> AdminClient:
        return AdminClient(self.base_url, self.ca_path)

    def sync_admin(self) -> SyncAdminClient:
        return SyncAdminClient(self.base_url, self.ca_path)


@dataclass
class EmulatorHandle:
    """A running emulator for one test: endpoint plus an open async admin client."""

    endpoint: EmulatorEndpoint
    admin: AdminClient
    emulator: Emulator | None = None  # set when it runs in-process


@dataclass
class EmulatorProcess:
    """``azure-arm-emulator`` running as a child process."""

    process: subprocess.Popen[bytes]
    log_path: Path
    endpoint: EmulatorEndpoint | None = None
    output: list[str] = field(default_factory=list)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after the grace period; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        return self.process.returncode


def start_emulator_process(work_dir: Path, *args: str) -> EmulatorProcess:
    """Start the emulator through the real CLI and wait for its ready line."""
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / "emulator.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(EMULATOR_DIR), str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    command = [
        sys.executable,
        "-m",
        "azure_arm_emulator",
        "--port",
        "0",
        "--cert-dir",
        str(work_dir / "certs"),
        *TEST_TIMING_ARGS,
        *args,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    handle = EmulatorProcess(process=process, log_path=log_path)

    def ready() -> re.Match[str] | None:
        if process.poll() is not None:
            raise RuntimeError(
                f"emulator exited with {process.returncode} before it was ready:\n{handle.log()}"
            )
        return READY.search(handle.log())

    try:
        match = wait_until(ready, timeout=START_TIMEOUT, what="emulator ready line")
    except BaseException:
        handle.stop()
        raise
    handle.endpoint = EmulatorEndpoint(base_url=match["url"], ca_path=Path(match["ca"]))
    return handle


@contextlib.asynccontextmanager
async def run_emulator_in_process(
    cert_dir: Path,
    *,
    world: World | None = None,
    settings: EmulatorSettings | None = None,
) -> AsyncIterator[EmulatorHandle]:
    """Serve an emulator on the running event loop for the duration of the block
    (``settings`` default: :func:`quick_settings`, no apply delay, no policy settling)."""
    emulator = Emulator(world or load_world(), settings=settings or quick_settings())
    async with EmulatorServer(emulator, cert_dir=cert_dir) as server:
        endpoint = EmulatorEndpoint(base_url=server.base_url, ca_path=server.ca_path)
        async with endpoint.admin() as admin:
            yield EmulatorHandle(endpoint=endpoint, admin=admin, emulator=emulator)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def emulator_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    handle = start_emulator_process(tmp_path_factory.mktemp("emulator"))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def emulator_endpoint(emulator_process: EmulatorProcess) -> EmulatorEndpoint:
    assert emulator_process.endpoint is not None
    emulator_process.endpoint.sync_admin().reset()
    return emulator_process.endpoint


@pytest.fixture
async def emulator(emulator_process: EmulatorProcess) -> AsyncIterator[EmulatorHandle]:
    endpoint = emulator_process.endpoint
    assert endpoint is not None
    async with endpoint.admin() as admin:
        await admin.reset()
        yield EmulatorHandle(endpoint=endpoint, admin=admin)


@pytest.fixture
async def emulator_in_process(tmp_path: Path) -> AsyncIterator[EmulatorHandle]:
    async with run_emulator_in_process(tmp_path / "certs") as handle:
        yield handle
