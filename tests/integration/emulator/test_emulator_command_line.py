"""``azure-arm-emulator`` as a user runs it: ready line, TLS material, flags, worlds,
and a clean exit on SIGTERM/SIGINT."""

from __future__ import annotations

import ipaddress
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from azure.mgmt.compute import ComputeManagementClient
from cryptography import x509

from azure_arm_emulator.admin_client import AdminError, SyncAdminClient
from azure_arm_emulator.world import generate_world, world_to_dict
from tests.integration.emulator.raw_arm import arm_call
from tests.support.emulator import (
    EMULATOR_DIR,
    REPO_ROOT,
    EmulatorEndpoint,
    EmulatorProcess,
    start_emulator_process,
)

pytestmark = pytest.mark.integration

ADMIN_TOKEN = "s3cret-admin"


@pytest.fixture
def started() -> Iterator[list[EmulatorProcess]]:
    processes: list[EmulatorProcess] = []
    yield processes
    for process in processes:
        process.stop()


def _start(started: list[EmulatorProcess], work_dir: Path, *args: str) -> EmulatorProcess:
    process = start_emulator_process(work_dir, *args)
    started.append(process)
    return process


@pytest.mark.parametrize(
    "signum",
    [
        pytest.param(signal.SIGTERM, id="SIGTERM stops the emulator cleanly"),
        pytest.param(signal.SIGINT, id="SIGINT stops the emulator cleanly"),
    ],
)
def test_emulator_announces_itself_and_exits_cleanly_on_signal(
    tmp_path: Path, started: list[EmulatorProcess], signum: signal.Signals
) -> None:
    process = _start(started, tmp_path)
    assert process.endpoint is not None

    process.process.send_signal(signum)
    status = process.process.wait(timeout=10)

    log = process.log()
    assert status == 0
    assert f"emulator endpoint: {process.endpoint.base_url}" in log
    assert f"emulator ca bundle: {process.endpoint.ca_path}" in log
    assert "emulator stopped" in log
    assert "Traceback" not in log


def test_server_certificate_names_loopback_and_chains_to_the_printed_ca(
    tmp_path: Path, started: list[EmulatorProcess]
) -> None:
    process = _start(started, tmp_path)
    assert process.endpoint is not None
    certs = process.endpoint.ca_path.parent

    server = x509.load_pem_x509_certificate((certs / "server.pem").read_bytes())
    ca = x509.load_pem_x509_certificate(process.endpoint.ca_path.read_bytes())

    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert server.issuer == ca.subject
    assert process.endpoint.base_url.startswith("https://127.0.0.1:")


def test_restart_with_the_same_cert_dir_keeps_the_ca(
    tmp_path: Path, started: list[EmulatorProcess]
) -> None:
    first = _start(started, tmp_path)
    assert first.endpoint is not None
    ca_before = first.endpoint.ca_path.read_bytes()
    first.stop()

    second = _start(started, tmp_path)

    assert second.endpoint is not None
    assert second.endpoint.ca_path.read_bytes() == ca_before


def test_world_file_decides_what_exists(tmp_path: Path, started: list[EmulatorProcess]) -> None:
    world = tmp_path / "world.yaml"
    world.write_text(yaml.safe_dump(world_to_dict(generate_world(vms=3))), encoding="utf-8")
    process = _start(started, tmp_path / "run", "--world", str(world))
    assert process.endpoint is not None

    with ComputeManagementClient(
        process.endpoint.credential(),
        "00000000-0000-0000-0000-000000000001",
        **process.endpoint.sdk_kwargs(),
    ) as compute:
        names = sorted(vm.name for vm in compute.virtual_machines.list_all())

    assert names == ["vm-00000", "vm-00001", "vm-00002"]


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """One emulator started with every behaviour flag, shared by the tests below."""
    process = start_emulator_process(
        tmp_path_factory.mktemp("configured"),
        "--never-revoke",
        "--revoke-lag",
        "30",
        "--page-size",
        "7",
        "--strict-tokens",
        "--admin-token",
        ADMIN_TOKEN,
        "--jit-rule-generation",
        "mixed",
        "--apply-delay",
        "12",
        "--policy-settle",
        "4.5",
    )
    try:
        yield process
    finally:
        process.stop()


def _admin(process: EmulatorProcess) -> SyncAdminClient:
    assert process.endpoint is not None
    return SyncAdminClient(process.endpoint.base_url, process.endpoint.ca_path, token=ADMIN_TOKEN)


def test_flags_become_the_settings_a_reset_returns_to(configured: EmulatorProcess) -> None:
    admin = _admin(configured)
    admin.update_settings(never_revoke=False, page_size=50)

    admin.reset()

    settings = admin.settings()
    assert (settings["never_revoke"], settings["revoke_lag_seconds"], settings["page_size"]) == (
        True,
        30.0,
        7,
    )
    assert settings["accept_any_token"] is False
    assert (
        settings["jit_rule_generation"],
        settings["apply_delay_seconds"],
        settings["policy_settle_seconds"],
    ) == ("mixed", 12.0, 4.5)


def test_the_suites_emulator_takes_effect_at_once_unless_a_test_asks(
    emulator_endpoint: EmulatorEndpoint,
) -> None:
    settings = emulator_endpoint.sync_admin().settings()

    assert (settings["apply_delay_seconds"], settings["policy_settle_seconds"]) == (0.0, 0.0)
    assert settings["jit_rule_generation"] == "current"


async def test_strict_tokens_refuse_unknown_bearers(configured: EmulatorProcess) -> None:
    assert configured.endpoint is not None
    path = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-web/providers/"
        "Microsoft.Compute/virtualMachines/vm-web-01"
    )

    unknown = await arm_call(configured.endpoint, "GET", path, api_version="2026-04-01")
    known = await arm_call(
        configured.endpoint, "GET", path, api_version="2026-04-01", token="rg-web-reader-token"
    )

    assert unknown.status == 401
    assert unknown.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert known.status == 200


def test_admin_token_guards_the_test_controls(configured: EmulatorProcess) -> None:
    assert configured.endpoint is not None

    with pytest.raises(AdminError) as caught:
        configured.endpoint.sync_admin().state()

    assert caught.value.status == 401
    assert _admin(configured).health()


def test_unreadable_world_is_a_usage_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("subscriptions:\n  - id: x\n    resourceGroups: [{name: rg}]\n")

    result = subprocess.run(
        [sys.executable, "-m", "azure_arm_emulator", "--world", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": f"{EMULATOR_DIR}:{REPO_ROOT}", "PATH": "/usr/bin:/bin"},
        check=False,
    )

    assert result.returncode == 2
    assert "'location' must be a non-empty string" in result.stderr
    assert "Traceback" not in result.stderr
