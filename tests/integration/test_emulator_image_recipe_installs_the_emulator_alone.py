"""emulator/Dockerfile, the azure-arm-emulator image the release workflow builds: no container
engine runs here, so its build stage is replayed outside one. The build context is what
emulator/Dockerfile.dockerignore lets in, the COPY instructions are carried out on it and its
`uv sync` commands run with the real uv (offline, from uv's cache): the virtualenv they make
runs the emulator and holds nothing of the operator. The image follows the operator image's
rules (same pinned base and uv, non-root numeric user, only the virtualenv in the final stage)
and starts the command the demo overlay's sidecar runs."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.dockerfile import Dockerfile, parse_dockerfile
from tests.support.repo import ROOT

EMULATOR_DOCKERFILE = ROOT / "emulator" / "Dockerfile"
IGNORE_FILE = ROOT / "emulator" / "Dockerfile.dockerignore"
OPERATOR_DOCKERFILE = ROOT / "Dockerfile"
DEMO_SIDECAR = ROOT / "deploy" / "overlays" / "demo" / "emulator-sidecar.yaml"
PACKAGE = "azure-arm-emulator"


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(EMULATOR_DOCKERFILE)


def _patterns() -> list[str]:
    lines = IGNORE_FILE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        body = pattern.removeprefix("!").rstrip("/")
        if body.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, body.removeprefix("**/")) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(prefix, body) for prefix in prefixes)
        if hit:
            ignored = not pattern.startswith("!")
    return ignored


def _context(into: Path) -> list[str]:
    """The repository's tracked files the ignore file lets into the build context, copied."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.splitlines()
    kept = [p for p in listed if not _ignored(p, _patterns()) and (ROOT / p).is_file()]
    for path in kept:
        (into / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, into / path)
    return kept


def _copy(context: Path, workdir: Path, arguments: list[str]) -> None:
    """COPY <src>... <dest>/ as Docker does it: a file goes into dest, a directory's contents."""
    *sources, dest = arguments
    target = workdir / dest
    target.mkdir(parents=True, exist_ok=True)
    for source in sources:
        origin = context / source
        assert origin.exists(), f"COPY {source}: not in the build context"
        if origin.is_dir():
            shutil.copytree(origin, target, dirs_exist_ok=True)
        else:
            shutil.copy2(origin, target / origin.name)


def _uv() -> Path:
    match = re.search(r"^UV_VERSION\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert match
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "azure-jit-operator" / f"uv-{match.group(1)}" / "bin" / "uv"


def test_the_build_context_holds_the_emulator_and_the_workspace_metadata_only(
    tmp_path: Path,
) -> None:
    kept = _context(tmp_path)
    assert "uv.lock" in kept
    assert "emulator/azure_arm_emulator/worlds/default.yaml" in kept
    for path in kept:
        assert not path.startswith(("operator/", "tests/", "devtools/azure", "deploy/", ".git"))
        assert not path.endswith((".pem", ".key"))


def test_the_build_stage_replayed_installs_the_emulator_and_nothing_of_the_operator(
    dockerfile: Dockerfile, tmp_path: Path
) -> None:
    uv = _uv()
    if not uv.exists():
        pytest.skip(f"no uv at {uv}: run `make install`")
    context, workdir, venv = tmp_path / "context", tmp_path / "src", tmp_path / "venv"
    context.mkdir()
    _context(context)
    build = dockerfile.stage("build")
    assert build is not None
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_LINK_MODE": "copy",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_OFFLINE": "1",  # the image downloads what uv.lock pins; here uv's cache has it
    }
    env.pop("VIRTUAL_ENV", None)
    synced = 0
    for instruction in build.instructions:
        if instruction.keyword == "COPY":
            _copy(context, workdir, instruction.words())
        elif instruction.keyword == "RUN" and instruction.arguments.startswith("uv sync"):
            command = shlex.split(instruction.arguments)
            assert "--frozen" in command
            assert command[command.index("--package") + 1] == PACKAGE
            # The image's interpreter is its base image's; here the tests' own.
            command[command.index("--python") + 1] = sys.executable
            ran = subprocess.run(
                [str(uv), *command[1:]],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            assert ran.returncode == 0, f"{instruction.arguments}:\n{ran.stderr}"
            synced += 1
    assert synced == 2, "dependencies first, then the emulator itself"
    helped = subprocess.run(
        [str(venv / "bin" / "azure-arm-emulator"), "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert helped.returncode == 0, helped.stderr
    assert "usage: azure-arm-emulator" in helped.stdout
    installed = {p.name.split("-")[0].lower() for p in venv.glob("lib/python*/site-packages/*")}
    assert "azure_arm_emulator" in installed
    for absent in ("azure_jit_operator", "azure_jit_devtools", "kopf", "kubernetes", "azure"):
        assert absent not in installed, f"{absent} is in the emulator's image"


def test_it_is_built_like_the_operator_image(dockerfile: Dockerfile) -> None:
    operator = parse_dockerfile(OPERATOR_DOCKERFILE)
    assert [s.image for s in dockerfile.stages] == [s.image for s in operator.stages]
    pip_uv = [i.arguments for i in dockerfile.instructions if "pip install" in i.arguments]
    assert pip_uv == [i.arguments for i in operator.instructions if "pip install" in i.arguments]
    final = dockerfile.final
    assert {i.flags().get("from") for i in final.all("COPY")} == {"build"}
    assert [i.arguments for i in final.all("USER")] == ["65532:65532"]
    assert [i.arguments for i in final.all("HEALTHCHECK")] == ["NONE"]


def test_it_starts_what_the_demo_overlays_sidecar_runs(dockerfile: Dockerfile) -> None:
    entrypoint = dockerfile.final.all("ENTRYPOINT")[-1].exec_form()
    sidecar = yaml.safe_load(DEMO_SIDECAR.read_text())
    emulator = next(
        c
        for c in sidecar["spec"]["template"]["spec"]["initContainers"]
        if c["name"] == "azure-emulator"
    )
    assert entrypoint == emulator["command"] == [PACKAGE]
    assert emulator["image"] == PACKAGE
    assert not dockerfile.final.all("CMD"), "the overlay gives the arguments"
