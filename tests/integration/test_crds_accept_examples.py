"""Every manifest in examples/ is really stored by the API server (not just dry-run), the way
a user or a GitOps tool applies it: `kubectl apply --server-side` into a namespace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.controlplane import REPO_ROOT, ControlPlane

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))


def _documents(path: Path) -> list[dict[str, Any]]:
    with path.open() as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def _is_subset(wanted: Any, stored: Any) -> bool:
    """Every field of ``wanted`` is in ``stored`` with the same value (defaults may add more)."""
    if isinstance(wanted, dict):
        return isinstance(stored, dict) and all(
            key in stored and _is_subset(value, stored[key]) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(stored, list)
            and len(wanted) == len(stored)
            and all(_is_subset(w, s) for w, s in zip(wanted, stored, strict=True))
        )
    return bool(wanted == stored)


def test_there_are_examples_of_every_kind() -> None:
    kinds = {doc["kind"] for path in EXAMPLES for doc in _documents(path)}
    assert kinds == {"JitPolicy", "JitAccessRequest", "JitAccessSchedule"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[f"{path.stem} is stored" for path in EXAMPLES])
def test_example_is_stored_by_server_side_apply(
    control_plane: ControlPlane, namespace: str, path: Path
) -> None:
    applied = control_plane.kubectl("apply", "--server-side", "-n", namespace, "-f", str(path))

    assert applied.returncode == 0, applied.stderr
    assert applied.stderr == "", "the API server warned about the example"
    for document in _documents(path):
        kind, name = document["kind"], document["metadata"]["name"]
        got = control_plane.kubectl("get", kind.lower(), name, "-n", namespace, "-o", "json")
        assert got.returncode == 0, got.stderr
        stored = json.loads(got.stdout)
        assert stored["metadata"]["uid"]
        assert _is_subset(document["spec"], stored["spec"])


def test_reapplying_an_unchanged_example_changes_nothing(
    control_plane: ControlPlane, namespace: str
) -> None:
    """GitOps tools re-apply on every sync; an unchanged manifest must not bump the object."""
    policy = next(p for p in EXAMPLES if _documents(p)[0]["kind"] == "JitPolicy")
    control_plane.kubectl("apply", "--server-side", "-n", namespace, "-f", str(policy), check=True)
    name = _documents(policy)[0]["metadata"]["name"]

    def generation_and_version() -> tuple[str, str]:
        got = control_plane.kubectl(
            "get", "jitpolicy", name, "-n", namespace, "-o", "json", check=True
        )
        metadata = json.loads(got.stdout)["metadata"]
        return str(metadata["generation"]), metadata["resourceVersion"]

    before = generation_and_version()
    again = control_plane.kubectl("apply", "--server-side", "-n", namespace, "-f", str(policy))

    assert again.returncode == 0, again.stderr
    assert "serverside-applied" in again.stdout
    assert generation_and_version() == before
