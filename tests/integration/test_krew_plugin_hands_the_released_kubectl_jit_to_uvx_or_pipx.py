"""The krew plugin of a release (hack/krew/build.sh from deploy/krew/): the manifest names the
archive's release URL and SHA-256, the archive is reproducible, and the launcher in it hands the
released Python package and every argument to uvx or pipx, or says what it needs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.support.repo import ROOT

BUILD = ROOT / "hack" / "krew" / "build.sh"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
VERSION = PROJECT["version"]
TAG = f"v{VERSION}"
ARCHIVE = f"kubectl-jit-{TAG}.tar.gz"


def _build(out: Path) -> None:
    built = subprocess.run(
        [str(BUILD), TAG, str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "GITHUB_REPOSITORY": "example/azure-jit-operator"},
    )
    assert built.returncode == 0, built.stderr


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("krew")
    _build(out)
    with tarfile.open(out / ARCHIVE) as archive:
        archive.extractall(out / "unpacked", filter="data")
    return out


def test_the_manifest_names_the_archive_of_the_release_and_its_sha256(plugin: Path) -> None:
    manifest = yaml.safe_load((plugin / "jit.yaml").read_text())
    assert manifest["kind"] == "Plugin"
    assert manifest["metadata"]["name"] == "jit"
    assert manifest["spec"]["version"] == TAG
    [platform] = manifest["spec"]["platforms"]
    assert platform["uri"] == (
        f"https://github.com/example/azure-jit-operator/releases/download/{TAG}/{ARCHIVE}"
    )
    assert platform["sha256"] == hashlib.sha256((plugin / ARCHIVE).read_bytes()).hexdigest()
    assert platform["bin"] == "kubectl-jit"
    assert "@" not in yaml.safe_dump(manifest["spec"]["platforms"])


def test_the_archive_is_reproducible(plugin: Path, tmp_path: Path) -> None:
    _build(tmp_path)
    assert (tmp_path / ARCHIVE).read_bytes() == (plugin / ARCHIVE).read_bytes()
    with tarfile.open(tmp_path / ARCHIVE) as archive:
        [member] = archive.getmembers()
    assert (member.name, member.mode & 0o777, member.uid, member.mtime) == (
        "kubectl-jit",
        0o755,
        0,
        0,
    )


@pytest.mark.parametrize(
    ("tools", "argv"),
    [
        pytest.param(
            ("uvx", "pipx"),
            ["uvx", "--quiet", "--from", f"azure-jit-operator=={VERSION}", "kubectl-jit"],
            id="uvx, preferred when both are there",
        ),
        pytest.param(
            ("pipx",),
            ["pipx", "run", "--spec", f"azure-jit-operator=={VERSION}", "kubectl-jit"],
            id="pipx without uv",
        ),
    ],
)
def test_the_launcher_hands_the_released_package_and_every_argument_to_uvx_or_pipx(
    plugin: Path, tmp_path: Path, tools: tuple[str, ...], argv: list[str]
) -> None:
    """uvx and pipx here print what they were asked to run (running the real ones would fetch
    the package from PyPI, which this machine must not)."""
    for tool in tools:
        stand_in = tmp_path / tool
        stand_in.write_text(f'#!/bin/sh\nprintf "%s\\n" {tool} "$@"\n')
        stand_in.chmod(0o755)
    ran = subprocess.run(
        [str(plugin / "unpacked" / "kubectl-jit"), "request", "web", "--for", "1h 30m"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env={"PATH": str(tmp_path)},  # only the stand-ins, none of the machine's
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [*argv, "request", "web", "--for", "1h 30m"]


def test_without_uv_or_pipx_the_launcher_says_what_it_needs(plugin: Path) -> None:
    ran = subprocess.run(
        [str(plugin / "unpacked" / "kubectl-jit"), "list"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env={"PATH": "/nonexistent"},
    )
    assert ran.returncode == 127
    assert f"azure-jit-operator=={VERSION}" in ran.stderr
    assert "uv" in ran.stderr
    assert "pipx" in ran.stderr
