"""JSON Schema validation against the Swagger 2.0 ``definitions`` of the saved Azure specs,
and the catalogue of their ``x-ms-examples``.

Every saved spec file gets the URI of its upstream path, so relative ``$ref``s such as
``../../../common/v1/types.json#/definitions/CloudError`` resolve the way they do upstream.
Refs into files that were not saved (``networkInterface.json``, ``virtualNetwork.json``,
``networkWatcher.json``, ``applicationSecurityGroup.json``: read-only back-references of
the NSG spec) resolve to a permissive schema ``{}`` -- those parts go unchecked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPECS = Path(__file__).resolve().parent / "azure-specs"
SHARED_SPECS = Path(__file__).resolve().parents[2] / ".." / "shared" / "specs" / "azure"
BASE = "https://specs.invalid/specification/"

# local file -> upstream path (azure-specs/README.md)
SPEC_FILES = {
    "security/2020-01-01/jitNetworkAccessPolicies.json": "security/resource-manager/"
    "Microsoft.Security/stable/2020-01-01/jitNetworkAccessPolicies.json",
    "security/common/v1/types.json": "security/resource-manager/common/v1/types.json",
    "network/2025-07-01/networkSecurityGroup.json": "network/resource-manager/"
    "Microsoft.Network/stable/2025-07-01/networkSecurityGroup.json",
    "network/2025-07-01/network.json": "network/resource-manager/"
    "Microsoft.Network/stable/2025-07-01/network.json",
}
JIT_SPEC = BASE + SPEC_FILES["security/2020-01-01/jitNetworkAccessPolicies.json"]
SECURITY_TYPES = BASE + SPEC_FILES["security/common/v1/types.json"]
NSG_SPEC = BASE + SPEC_FILES["network/2025-07-01/networkSecurityGroup.json"]
NETWORK_COMMON = BASE + SPEC_FILES["network/2025-07-01/network.json"]

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _load(relative: str) -> Any:
    return json.loads((SPECS / relative).read_text(encoding="utf-8"))


class _Permissive(dict[str, Any]):
    """A stand-in document: every JSON pointer into it is the empty (accept-all) schema."""

    def __missing__(self, key: str) -> _Permissive:
        return _Permissive()


def _retrieve(uri: str) -> Resource[Any]:
    for relative, upstream in SPEC_FILES.items():
        if uri == BASE + upstream:
            return DRAFT4.create_resource(_load(relative))
    return DRAFT4.create_resource(_Permissive())


@cache
def _registry() -> Registry[Any]:
    return Registry(retrieve=_retrieve)  # type: ignore[call-arg]


_FORMATS = FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_RFC3339.match(value))


def _absolute(document: str, ref: str | None) -> str | None:
    return urljoin(document, ref) if ref else None


def definition(document: str, name: str) -> str:
    """The absolute ``$ref`` of ``#/definitions/<name>`` in the spec at URI ``document``."""
    return f"{document}#/definitions/{name}"


# Where real Azure answers outside its own spec and the emulator follows Azure: a request
# port's status "Initiating" (recorded, E7 in docs/azure-fidelity.md; the upstream Initiate
# example shows it too) is missing from the spec's enum (Revoked, Initiated).
BEYOND_SPEC = ("status: 'Initiating' is not one of ['Revoked', 'Initiated']",)


def schema_errors(ref: str, instance: object) -> list[str]:
    """Why ``instance`` does not validate against the schema at ``ref`` (empty: it does),
    leaving out the deviations real Azure shows (:data:`BEYOND_SPEC`)."""
    checker = Draft4Validator({"$ref": ref}, registry=_registry(), format_checker=_FORMATS)
    found = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in checker.iter_errors(instance)
    ]
    return [e for e in found if not e.endswith(BEYOND_SPEC)]


# --------------------------------------------------------------------------- examples


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    body_parameter: str | None
    responses: dict[str, str | None]  # status -> absolute schema $ref, None: no body


def _resolve_parameter(spec: dict[str, Any], parameter: dict[str, Any]) -> Any:
    """A parameter, following a same-file ``$ref`` (body parameters are always local)."""
    ref = parameter.get("$ref")
    if ref is None:
        return parameter
    target, _, pointer = ref.partition("#")
    if target:
        return {}
    node: Any = spec
    for part in pointer.strip("/").split("/"):
        node = node[part]
    return node


def operations_by_example() -> dict[str, Operation]:
    """Example file name -> the operation whose ``x-ms-examples`` reference it."""
    found: dict[str, Operation] = {}
    for relative, upstream in SPEC_FILES.items():
        spec = _load(relative)
        document = BASE + upstream
        for path, methods in spec.get("paths", {}).items():
            for method, operation in methods.items():
                if not isinstance(operation, dict) or "operationId" not in operation:
                    continue
                body = None
                for parameter in operation.get("parameters", []):
                    resolved = _resolve_parameter(spec, parameter)
                    if resolved.get("in") == "body":
                        body = resolved["name"]
                responses = {
                    status: _absolute(document, (answer.get("schema") or {}).get("$ref"))
                    for status, answer in operation["responses"].items()
                }
                for example in operation.get("x-ms-examples", {}).values():
                    name = Path(example["$ref"]).name
                    found[name] = Operation(
                        operation_id=operation["operationId"],
                        method=method.upper(),
                        path=path,
                        body_parameter=body,
                        responses=responses,
                    )
    return found


def example_files() -> list[Path]:
    return sorted(p for p in SPECS.rglob("examples/**/*.json"))
