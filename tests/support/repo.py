"""Paths and loaders for repository files that tests read (CRDs, examples)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
EXAMPLES = ROOT / "examples"


def load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    assert isinstance(loaded, dict), f"{path} is not a single YAML mapping"
    return loaded


def crd(kind_plural: str) -> dict[str, Any]:
    return load_yaml(CRDS / f"{kind_plural}.azurejit.dev.yaml")


def crd_schema(kind_plural: str) -> dict[str, Any]:
    schema: dict[str, Any] = crd(kind_plural)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))
