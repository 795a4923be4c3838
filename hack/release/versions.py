#!/usr/bin/env python3
"""The release's one version number, in every place that carries it (docs/releasing.md).

    python3 hack/release/versions.py                  # print it; exit 1 when the places disagree
    python3 hack/release/versions.py --tag v1.2.3     # also: the tag names it, CHANGELOG.md has
                                                      # its section (what release.yml checks)
    python3 hack/release/versions.py --notes 1.2.3    # print CHANGELOG.md's section for it

Standard library only (tomllib, Python >= 3.11): it runs on a bare runner before any install.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "azure-jit-operator" / "Chart.yaml"
PACKAGE_INIT = ROOT / "operator" / "azure_jit_operator" / "__init__.py"
CHANGELOG = ROOT / "CHANGELOG.md"
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")


def _chart_field(name: str) -> str:
    match = re.search(rf'^{name}:\s*"?([^"\s#]+)"?', CHART.read_text(encoding="utf-8"), re.M)
    return match.group(1) if match else "<missing>"


def places() -> dict[str, str]:
    """Where the version lives -> what it says there."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    init = re.search(r'^__version__ = "([^"]+)"', PACKAGE_INIT.read_text(encoding="utf-8"), re.M)
    package_version = init.group(1) if init else "<missing>"
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    locked = next(
        (p["version"] for p in lock["package"] if p["name"] == project["name"]), "<missing>"
    )
    emulator = tomllib.loads((ROOT / "emulator" / "pyproject.toml").read_text(encoding="utf-8"))
    return {
        "pyproject.toml project.version": project["version"],
        "emulator/pyproject.toml project.version (its image)": emulator["project"]["version"],
        "uv.lock (the project's own entry)": locked,
        "operator/azure_jit_operator/__init__.py __version__": package_version,
        "deploy/helm/azure-jit-operator/Chart.yaml version": _chart_field("version"),
        "deploy/helm/azure-jit-operator/Chart.yaml appVersion": _chart_field("appVersion"),
    }


def notes(version: str) -> str | None:
    """CHANGELOG.md's section `## [<version>] ...`, without its heading; None when absent."""
    text = CHANGELOG.read_text(encoding="utf-8") if CHANGELOG.exists() else ""
    heading = re.compile(rf"^## \[{re.escape(version)}\][^\n]*\n", re.M)
    found = heading.search(text)
    if found is None:
        return None
    rest = text[found.end() :]
    following = re.search(r"^## |^\[[^\]]+\]: ", rest, re.M)
    return (rest[: following.start()] if following else rest).strip() + "\n"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--notes"] and len(argv) == 2:
        section = notes(argv[1])
        if section is None:
            print(f"CHANGELOG.md has no section ## [{argv[1]}]", file=sys.stderr)
            return 1
        sys.stdout.write(section)
        return 0
    found = places()
    versions = set(found.values())
    problems = []
    if len(versions) != 1:
        problems.append("the versions disagree:")
        problems += [f"  {where}: {value}" for where, value in found.items()]
    version = next(iter(versions)) if len(versions) == 1 else None
    if version is not None and not SEMVER.match(version):
        problems.append(f"{version} is not a SemVer version (MAJOR.MINOR.PATCH[-PRERELEASE])")
    if argv[:1] == ["--tag"] and len(argv) == 2:
        tag = argv[1]
        if version is not None and tag != f"v{version}":
            problems.append(f"the tag {tag} is not v{version}, the version in: {', '.join(found)}")
        if version is not None and notes(version) is None:
            problems.append(f"CHANGELOG.md has no section ## [{version}] (move Unreleased there)")
    elif argv:
        print(__doc__, file=sys.stderr)
        return 2
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(version)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
