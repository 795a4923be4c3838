"""Every saved ``x-ms-examples`` request replayed against the emulator: accepted with one of
the example's statuses, answered with a body that validates against the spec and carries
every field the example shows (and the headers it shows)."""

from __future__ import annotations

import filecmp
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from azure_arm_emulator.clock import parse_timestamp
from azure_arm_emulator.world import load_world
from tests.golden.swagger import (
    SHARED_SPECS,
    SPECS,
    example_files,
    operations_by_example,
    schema_errors,
)
from tests.integration.emulator.raw_arm import UNSET, arm_call
from tests.support.emulator import EmulatorHandle, run_emulator_in_process

GOLDEN_WORLD = Path(__file__).resolve().parent / "golden_world.yaml"
SPECS_SUMS = Path(__file__).resolve().parent / "azure-specs.sha256"  # sha256sum, taken once
OPERATIONS = operations_by_example()
_VM = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
    "/providers/Microsoft.Compute/virtualMachines/{vmName}"
)
# The compute swagger was not saved (size); its two examples name their operation.
COMPUTE_PATHS = {
    "VirtualMachines_Get": ("GET", _VM),
    "VirtualMachines_InstanceView": ("GET", _VM + "/instanceView"),
}
# Fields an example shows that the emulator deliberately does not model, and why.
NOT_MODELLED = {
    "VirtualMachine_Get.json": {
        "properties.availabilitySet": "availability sets are not emulated",
        "properties.proximityPlacementGroup": "proximity placement groups are not emulated",
        "properties.applicationProfile": "gallery applications are not emulated",
        "properties.storageProfile.dataDisks[]": "emulated VMs have no data disks",
        "properties.diagnosticsProfile.bootDiagnostics.storageUri": (
            "emulated VMs use managed boot diagnostics, which have no storage account"
        ),
        "resources": "VM extensions are not emulated",
        "managedBy": "VM scale sets are not emulated",
    },
    "VirtualMachine_Get_InstanceViewAutoPlacedOnDedicatedHostGroup.json": {
        "assignedHost": "dedicated hosts are not emulated",
    },
}
JIT_EXAMPLES = SPECS / "security" / "2020-01-01" / "examples" / "JitNetworkAccessPolicies"
CREATE_EXAMPLE = JIT_EXAMPLES / "CreateJitNetworkAccessPolicy_example.json"
INITIATE_EXAMPLE = JIT_EXAMPLES / "InitiateJitNetworkAccessPolicy_example.json"


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _operation(example: Path, data: dict[str, Any]) -> tuple[str, str, str | None, Any]:
    """(method, path template, body parameter, operation) for an example file."""
    if example.name in OPERATIONS:
        operation = OPERATIONS[example.name]
        return operation.method, operation.path, operation.body_parameter, operation
    method, path = COMPUTE_PATHS[data["operationId"]]
    return method, path, None, None


def _path(template: str, parameters: dict[str, Any]) -> str:
    path = template
    for name, value in parameters.items():
        path = path.replace("{" + name + "}", quote(str(value), safe=""))
    return path


def missing_fields(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Fields present in ``expected`` (an example body) and absent from ``actual``."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [where or "<root>"]
        found: list[str] = []
        for key, value in expected.items():
            path = f"{where}.{key}" if where else key
            if key not in actual:
                found.append(path)
            else:
                found += missing_fields(value, actual[key], path)
        return found
    if isinstance(expected, list) and expected:
        if not isinstance(actual, list) or not actual:
            return [f"{where}[]"]
        found = []
        for index, item in enumerate(expected):
            found += missing_fields(item, actual[min(index, len(actual) - 1)], f"{where}[]")
        return sorted(set(found))
    return []


async def _replay(handle: EmulatorHandle, example: Path) -> tuple[Any, Any]:
    data = _load(example)
    method, template, body_name, operation = _operation(example, data)
    parameters = dict(data["parameters"])
    api_version = parameters.pop("api-version")
    body = parameters.pop(body_name) if body_name else UNSET
    expand = parameters.pop("$expand", None)
    path = _path(template, parameters)
    if expand:
        path += f"?$expand={expand}"
    response = await arm_call(handle.endpoint, method, path, api_version=api_version, body=body)
    return response, operation


async def _prepare_jit(handle: EmulatorHandle, example: Path) -> None:
    """A policy with one initiated request exists, on a clock at the examples' time."""
    initiate = _load(INITIATE_EXAMPLE)
    start = parse_timestamp(initiate["responses"]["202"]["body"]["startTimeUtc"])
    await handle.admin.set_clock(start)
    if example.name == CREATE_EXAMPLE.name:
        return
    await _replay(handle, CREATE_EXAMPLE)
    if example.name != INITIATE_EXAMPLE.name:
        await _replay(handle, INITIATE_EXAMPLE)


@pytest.fixture
async def golden(tmp_path: Path) -> AsyncIterator[EmulatorHandle]:
    async with run_emulator_in_process(tmp_path, world=load_world(GOLDEN_WORLD)) as handle:
        yield handle


@pytest.mark.parametrize(
    "example",
    [pytest.param(p, id=str(p.relative_to(SPECS))) for p in example_files()],
)
async def test_example_request_is_answered_like_the_example(
    golden: EmulatorHandle, example: Path
) -> None:
    if "security" in example.parts:
        await _prepare_jit(golden, example)
    if example.name == CREATE_EXAMPLE.name:
        await _replay(golden, CREATE_EXAMPLE)
        await _replay(golden, INITIATE_EXAMPLE)
    data = _load(example)

    response, operation = await _replay(golden, example)

    assert str(response.status) in data["responses"], response.text
    shown = data["responses"][str(response.status)]
    for header in shown.get("headers", {}):
        assert header in response.headers, f"{example.name}: header {header} missing"
    expected_body = shown.get("body")
    if expected_body is None:
        return
    body = response.json()
    if operation is not None:
        schema = operation.responses[str(response.status)]
        assert schema is not None
        assert schema_errors(schema, body) == []
    exempt = NOT_MODELLED.get(example.name, {})
    assert [f for f in missing_fields(expected_body, body) if f not in exempt] == []


def test_spec_copy_is_verbatim() -> None:
    """The vendored specs are byte for byte what was taken from ../shared/specs/azure: their
    SHA-256 sums are recorded beside them, and, where that directory sits next to the
    checkout (as on the development machines), it is compared as well."""
    recorded = {
        name.removeprefix("./"): digest
        for digest, name in (
            line.split(maxsplit=1) for line in SPECS_SUMS.read_text().splitlines() if line
        )
    }
    actual = {
        str(path.relative_to(SPECS)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in SPECS.rglob("*")
        if path.is_file()
    }
    assert actual == recorded
    if SHARED_SPECS.is_dir():
        comparison = filecmp.dircmp(SHARED_SPECS, SPECS)

        def differences(cmp: filecmp.dircmp[str]) -> list[str]:
            found = [*cmp.left_only, *cmp.right_only, *cmp.diff_files, *cmp.funny_files]
            for sub in cmp.subdirs.values():
                found += differences(sub)
            return found

        assert differences(comparison) == []
        for relative in actual:
            assert (SPECS / relative).read_bytes() == (SHARED_SPECS / relative).read_bytes()


def test_every_saved_example_is_replayed() -> None:
    names = {p.name for p in example_files()}

    assert len(names) == 23
    assert names - set(OPERATIONS) == {
        "VirtualMachine_Get.json",
        "VirtualMachine_Get_InstanceViewAutoPlacedOnDedicatedHostGroup.json",
    }
