"""The repository is a uv workspace of three distributions, and they stay apart: the operator's
wheel (what its image installs) holds nothing of the Azure emulator or the developer tooling,
the emulator's wheel holds all of the emulator, its worlds included, and its console script,
and the emulator runs without loading a single operator module.

The wheels are built from this checkout by uv, as a release would build them (a few seconds)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from azure_jit_devtools.cli import build_parser as build_dev_parser
from azure_jit_operator.cli import build_parser as build_operator_parser
from tests.support.controlplane import in_ci
from tests.support.repo import ROOT

pytestmark = pytest.mark.integration

EMULATOR_SOURCE = ROOT / "emulator" / "azure_arm_emulator"
DEVTOOLS_SOURCE = ROOT / "devtools" / "azure_jit_devtools"
VENV_BIN = Path(sys.executable).parent
# What must never be in the operator's wheel, by path component.
FOREIGN = {"azure_arm_emulator", "azure_jit_devtools", "emulator", "localcluster", "demo", "worlds"}
PINNED = re.compile(r"^[A-Za-z0-9_.\-]+==\d[\w.]*$")


def _uv() -> Path:
    """The uv the Makefile bootstraps (make test depends on it), else one on PATH."""
    if "UV" in os.environ:
        return Path(os.environ["UV"])
    version = re.search(r"^UV_VERSION\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert version is not None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    bootstrapped = cache / "azure-jit-operator" / f"uv-{version[1]}" / "bin" / "uv"
    if bootstrapped.exists():
        return bootstrapped
    found = shutil.which("uv")
    if found is None:
        message = "uv is not installed (make install bootstraps it)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return Path(found)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, zipfile.ZipFile]:
    out = tmp_path_factory.mktemp("wheels")
    result = subprocess.run(
        [str(_uv()), "build", "--all-packages", "--wheel", "--out-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    built = {path.name.split("-")[0]: zipfile.ZipFile(path) for path in out.glob("*.whl")}
    assert set(built) == {"azure_jit_operator", "azure_arm_emulator", "azure_jit_devtools"}
    return built


@pytest.fixture(scope="module", autouse=True)
def _close(wheels: dict[str, zipfile.ZipFile]) -> Iterator[None]:
    yield
    for wheel in wheels.values():
        wheel.close()


def _metadata(wheel: zipfile.ZipFile, name: str) -> str:
    [path] = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}")]
    return wheel.read(path).decode()


def _requires(wheel: zipfile.ZipFile) -> list[str]:
    return [
        line.removeprefix("Requires-Dist:").strip().replace(" ", "")
        for line in _metadata(wheel, "METADATA").splitlines()
        if line.startswith("Requires-Dist:")
    ]


def _scripts(wheel: zipfile.ZipFile) -> dict[str, str]:
    text = _metadata(wheel, "entry_points.txt")
    section = text.split("[console_scripts]", 1)[1].split("\n[", 1)[0]
    pairs = (line.split("=", 1) for line in section.splitlines() if "=" in line)
    return {name.strip(): target.strip() for name, target in pairs}


def _sources(package: Path) -> set[str]:
    return {
        f"{package.name}/{path.relative_to(package).as_posix()}"
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_the_operator_wheel_holds_the_operator_and_nothing_of_the_emulator_or_dev_tools(
    wheels: dict[str, zipfile.ZipFile],
) -> None:
    wheel = wheels["azure_jit_operator"]
    names = wheel.namelist()
    assert "azure_jit_operator/cli.py" in names
    assert "azure_jit_operator/handlers/__init__.py" in names
    foreign = [n for n in names if FOREIGN & set(Path(n).parts) or n.endswith((".yaml", ".md"))]
    assert not foreign, f"the operator's wheel carries {foreign}"
    assert all(n.startswith(("azure_jit_operator/", "azure_jit_operator-")) for n in names)
    assert set(_scripts(wheel)) == {"azure-jit-operator", "kubectl-jit"}
    requires = _requires(wheel)
    assert not [r for r in requires if "emulator" in r or "devtools" in r], requires
    assert all(PINNED.match(r) for r in requires), requires


def test_the_emulator_wheel_holds_every_module_and_world_and_its_console_script(
    wheels: dict[str, zipfile.ZipFile],
) -> None:
    wheel = wheels["azure_arm_emulator"]
    names = set(wheel.namelist())
    sources = _sources(EMULATOR_SOURCE)
    worlds = {n for n in sources if n.startswith("azure_arm_emulator/worlds/")}
    assert "azure_arm_emulator/worlds/default.yaml" in worlds
    assert sources - names == set(), "source files missing from the emulator's wheel"
    assert not [n for n in names if n.startswith(("azure_jit_operator", "azure_jit_devtools"))]
    assert _scripts(wheel) == {"azure-arm-emulator": "azure_arm_emulator.command:main"}
    requires = _requires(wheel)
    assert {r.partition("==")[0].lower() for r in requires} >= {"aiohttp", "cryptography", "pyyaml"}
    assert all(PINNED.match(r) for r in requires), f"exact pins: {requires}"
    assert "azure-arm-emulator" in _metadata(wheel, "METADATA"), "its README is the description"


def test_the_dev_tools_wheel_holds_the_local_control_plane_and_the_demo_only(
    wheels: dict[str, zipfile.ZipFile],
) -> None:
    wheel = wheels["azure_jit_devtools"]
    names = set(wheel.namelist())
    assert _sources(DEVTOOLS_SOURCE) - names == set()
    assert all(n.startswith(("azure_jit_devtools/", "azure_jit_devtools-")) for n in names)
    assert _scripts(wheel) == {"azure-jit-dev": "azure_jit_devtools.cli:main"}


def test_the_installed_emulator_console_script_answers_help() -> None:
    script = VENV_BIN / "azure-arm-emulator"
    assert script.is_file(), "make install puts every workspace member's scripts in .venv/bin"

    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: azure-arm-emulator")
    # The arguments `azure-jit-operator emulator` had, which the deploy overlay and tests use.
    for flag in ("--world", "--port", "--cert-dir", "--generate-vms", "--jit-rule-generation"):
        assert flag in result.stdout


def test_the_operator_command_runs_only_the_operator_and_the_demo_moved_to_the_dev_tools() -> None:
    # In-process: a subprocess would spend seconds importing kopf and the SDK for a usage error.
    operator = build_operator_parser()
    [commands] = [a for a in operator._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == {"run"}, "no emulator or demo subcommand any more"
    args = build_dev_parser().parse_args(["demo", "--bin-dir", "/bin", "--keep"])
    assert (args.command, args.bin_dir, args.keep) == ("demo", Path("/bin"), True)


IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import azure_arm_emulator
names = [m.name for m in pkgutil.walk_packages(azure_arm_emulator.__path__, "azure_arm_emulator.")]
for name in names:
    if not name.endswith(".__main__"):  # runs the server
        importlib.import_module(name)
print(json.dumps({"imported": names, "loaded": sorted(sys.modules)}))
"""


def test_every_emulator_module_imports_without_loading_the_operator() -> None:
    # -I: no cwd, PYTHONPATH or user site, so only what the virtualenv installs is importable;
    # the operator is importable there too, which is what makes its absence below mean something.
    result = subprocess.run(
        [sys.executable, "-I", "-c", IMPORT_EVERYTHING],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected = {f"azure_arm_emulator.{p.stem}" for p in EMULATOR_SOURCE.glob("*.py")}
    assert expected - {"azure_arm_emulator.__init__"} <= set(report["imported"])
    roots = {name.partition(".")[0] for name in report["loaded"]}
    # "azure": the Azure SDK, which the operator's clients use and the emulator stands in for.
    leaked = roots & {"azure_jit_operator", "azure_jit_devtools", "kopf", "kubernetes", "azure"}
    assert not leaked, f"the emulator loaded {sorted(leaked)}"
    check = subprocess.run(
        [sys.executable, "-I", "-c", "import azure_jit_operator"], capture_output=True, check=False
    )
    assert check.returncode == 0, "the operator is installed next to it, just not imported"
