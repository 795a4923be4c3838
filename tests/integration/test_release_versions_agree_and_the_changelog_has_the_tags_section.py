"""hack/release/versions.py, the release workflow's first check: today every place that carries
the version agrees; a tag that names another version, a place that disagrees, or a release
without its CHANGELOG.md section is refused, naming what is wrong; the release notes are the
CHANGELOG.md section of the version."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.repo import ROOT

SCRIPT = Path("hack") / "release" / "versions.py"
CARRIERS = [
    Path("pyproject.toml"),
    Path("emulator") / "pyproject.toml",
    Path("uv.lock"),
    Path("operator") / "azure_jit_operator" / "__init__.py",
    Path("deploy") / "helm" / "azure-jit-operator" / "Chart.yaml",
    Path("CHANGELOG.md"),
]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The script and the files it reads, copied, so a test can change them."""
    for relative in [SCRIPT, *CARRIERS]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / relative, tmp_path / relative)
    return tmp_path


def _released(checkout: Path, version: str = VERSION) -> None:
    changelog = checkout / "CHANGELOG.md"
    text = changelog.read_text()
    section = f"## [{version}] - 2026-12-01\n\n### Fixed\n\n- Something.\n\n"
    changelog.write_text(text.replace("\n[Unreleased]: ", f"\n{section}[Unreleased]: ", 1))


def test_every_place_that_carries_the_version_agrees_today() -> None:
    ran = _run(ROOT)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == VERSION


def test_a_tag_of_the_version_with_its_changelog_section_is_a_release(checkout: Path) -> None:
    _released(checkout)
    ran = _run(checkout, "--tag", f"v{VERSION}")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == VERSION
    notes = _run(checkout, "--notes", VERSION)
    assert notes.returncode == 0, notes.stderr
    assert notes.stdout == "### Fixed\n\n- Something.\n"


def test_a_release_without_its_changelog_section_is_refused(checkout: Path) -> None:
    ran = _run(checkout, "--tag", f"v{VERSION}")
    assert ran.returncode == 1
    assert f"CHANGELOG.md has no section ## [{VERSION}]" in ran.stderr


def test_a_tag_naming_another_version_is_refused(checkout: Path) -> None:
    _released(checkout)
    ran = _run(checkout, "--tag", "v99.0.0")
    assert ran.returncode == 1
    assert f"the tag v99.0.0 is not v{VERSION}" in ran.stderr


def test_a_chart_left_at_the_old_version_is_refused_and_named(checkout: Path) -> None:
    chart = checkout / "deploy" / "helm" / "azure-jit-operator" / "Chart.yaml"
    chart.write_text(chart.read_text().replace(f"\nversion: {VERSION}\n", "\nversion: 0.0.9\n"))
    ran = _run(checkout)
    assert ran.returncode == 1
    assert "the versions disagree" in ran.stderr
    assert "Chart.yaml version: 0.0.9" in ran.stderr
    assert f"Chart.yaml appVersion: {VERSION}" in ran.stderr
