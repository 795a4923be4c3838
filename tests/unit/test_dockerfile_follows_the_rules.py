"""The images' Dockerfiles (the operator's, ``Dockerfile``, and the emulator's,
``emulator/Dockerfile``) are held to the rules here: multi-stage, pinned base image, numeric
non-root user, no build tools in the final image, dependencies exactly as locked, nothing
fetched from URLs, no secrets, health handled by Kubernetes probes, and a build context that
lets in only what the image needs. ``make image`` builds both without a daemon
(hack/image/build.sh) and ``make image-test`` runs them (tests/image)."""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.dockerfile import Dockerfile, Stage, parse_dockerfile
from tests.support.repo import ROOT

DEPLOYMENT = ROOT / "deploy" / "base" / "deployment.yaml"
EMULATOR_SIDECAR = ROOT / "deploy" / "overlays" / "demo" / "emulator-sidecar.yaml"
BUILD_SCRIPT = ROOT / "hack" / "image" / "build.sh"


@dataclass(frozen=True)
class Image:
    """One image: its Dockerfile, build context filter, distribution and where it is deployed."""

    distribution: str  # the workspace member the image installs (uv sync --package)
    dockerfile: Path
    dockerignore: Path
    pyproject: Path  # the distribution's, with its console scripts
    command: tuple[str, ...]  # ENTRYPOINT + CMD
    port: str  # the one EXPOSE
    manifest: Path  # the Kubernetes manifest that runs it


OPERATOR = Image(
    distribution="azure-jit-operator",
    dockerfile=ROOT / "Dockerfile",
    dockerignore=ROOT / ".dockerignore",
    pyproject=ROOT / "pyproject.toml",
    command=("azure-jit-operator", "run"),
    port="9090",
    manifest=DEPLOYMENT,
)
EMULATOR = Image(
    distribution="azure-arm-emulator",
    dockerfile=ROOT / "emulator" / "Dockerfile",
    # BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile; build.sh passes it.
    dockerignore=ROOT / "emulator" / "Dockerfile.dockerignore",
    pyproject=ROOT / "emulator" / "pyproject.toml",
    command=("azure-arm-emulator", "--port", "8443"),
    port="8443",
    manifest=EMULATOR_SIDECAR,
)
IMAGES = [pytest.param(OPERATOR, id="operator"), pytest.param(EMULATOR, id="emulator")]

# A tag that names an exact release: python:3.11.14-slim-bookworm, not python:3 or :latest.
PINNED_TAG = re.compile(r"^[\w.\-/:]+:\d+\.\d+\.\d+[\w.\-]*$")
PINNED_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
BUILD_TOOLS = re.compile(
    r"\b(apt-get|apt|apk|dnf|yum|microdnf|pip3?|uv|gcc|g\+\+|cc|clang|make|cmake|"
    r"build-essential|rustc|cargo|go|curl|wget|git)\b"
)
SECRET_NAMES = re.compile(r"(PASSWORD|SECRET|TOKEN|PRIVATE|CREDENTIAL|API_?KEY)", re.IGNORECASE)


@pytest.fixture(params=IMAGES)
def image(request: pytest.FixtureRequest) -> Image:
    value: Image = request.param
    return value


@pytest.fixture
def dockerfile(image: Image) -> Dockerfile:
    return parse_dockerfile(image.dockerfile)


def _runs(stage: Stage) -> list[str]:
    return [i.arguments for i in stage.all("RUN")]


def test_the_image_is_built_in_separate_stages_and_the_final_one_only_copies_the_result(
    dockerfile: Dockerfile,
) -> None:
    assert len(dockerfile.stages) >= 2, "a build stage and a runtime stage"
    final = dockerfile.final
    earlier = {s.name for s in dockerfile.stages[:-1]}
    sources = {i.flags().get("from") for i in final.all("COPY")}
    assert sources & earlier, "the runtime stage copies the built virtualenv from a build stage"
    assert all(source in earlier for source in sources), (
        "the runtime stage copies nothing from the build context, only from earlier stages"
    )


def test_every_base_image_is_pinned_to_a_release(dockerfile: Dockerfile) -> None:
    names = {s.name for s in dockerfile.stages if s.name}
    for stage in dockerfile.stages:
        if stage.image in names:
            continue  # FROM an earlier stage
        assert "$" not in stage.image, f"unresolved variable in FROM {stage.image}"
        assert PINNED_TAG.match(stage.image.split("@")[0]) or PINNED_DIGEST.search(stage.image), (
            f"FROM {stage.image}: pin an exact version tag (or a digest)"
        )
        assert not stage.image.split("@")[0].endswith(":latest")


def test_build_and_runtime_use_the_same_python_the_project_requires(
    dockerfile: Dockerfile,
) -> None:
    images = {
        s.image for s in dockerfile.stages if s.image not in {t.name for t in dockerfile.stages}
    }
    assert len(images) == 1, f"one base image, so the virtualenv runs where it was built: {images}"
    version = re.search(r"python:(\d+)\.(\d+)", images.pop())
    assert version is not None
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(p) for p in requires.removeprefix(">=").split("."))
    assert (int(version[1]), int(version[2])) >= minimum


def test_the_container_runs_as_a_numeric_non_root_user(dockerfile: Dockerfile) -> None:
    users = dockerfile.final.all("USER")
    assert users, "the runtime stage sets USER"
    uid, _, gid = users[-1].arguments.partition(":")
    assert uid.isdigit(), "numeric, so runAsNonRoot can verify it without /etc/passwd"
    assert int(uid) != 0
    assert not gid or (gid.isdigit() and int(gid) != 0)
    deployment = DEPLOYMENT.read_text()
    # The pod's securityContext: the operator and the demo's emulator sidecar alike.
    assert f"runAsUser: {uid}" in deployment, "the Deployment runs as the image's user"


def test_the_final_image_gets_no_package_manager_compiler_or_downloader(
    dockerfile: Dockerfile,
) -> None:
    for command in _runs(dockerfile.final):
        found = BUILD_TOOLS.findall(command)
        assert not found, f"runtime stage runs {found}: {command}"
    copied = " ".join(i.arguments for i in dockerfile.final.all("COPY"))
    assert "uv" not in re.findall(r"/(\w+)\b", copied), "uv stays in the build stage"


def test_dependencies_come_from_the_lock_file_without_test_or_dev_groups(
    dockerfile: Dockerfile, image: Image
) -> None:
    build = dockerfile.stages[0]
    copied = [w for i in build.all("COPY") for w in i.words()[:-1]]
    assert "uv.lock" in copied
    assert "pyproject.toml" in copied
    syncs = [shlex.split(c) for c in _runs(build) if c.startswith("uv sync")]
    assert syncs, "dependencies are installed with uv sync"
    for argv in syncs:
        assert "--frozen" in argv or "--locked" in argv, f"{argv}: must not re-resolve"
        for flag in ("--no-dev", "--no-default-groups"):
            assert flag in argv, f"{argv}: pyproject's default groups (test, dev) stay out"
        # A plain sync would install the whole workspace: the other members too.
        assert "--package" in argv, f"{argv}: the image's own distribution only"
        assert argv[argv.index("--package") + 1] == image.distribution
        assert "--all-packages" not in argv
    assert any("--no-editable" in argv for argv in syncs), "the project itself is a real install"
    installs = [c for c in _runs(build) if "pip install" in c]
    assert all(re.search(r"\buv==\d+\.\d+\.\d+\b", c) for c in installs), (
        "the only pip install is uv itself, pinned"
    )


def test_the_image_uses_the_same_uv_as_the_makefile(dockerfile: Dockerfile) -> None:
    makefile = (ROOT / "Makefile").read_text()
    wanted = re.search(r"^UV_VERSION\s*:=\s*(\S+)", makefile, re.MULTILINE)
    assert wanted is not None
    assert f"uv=={wanted[1]}" in " ".join(_runs(dockerfile.stages[0]))


def test_nothing_is_fetched_from_urls_and_no_secret_is_baked_in(dockerfile: Dockerfile) -> None:
    keywords = {i.keyword for i in dockerfile.instructions}
    assert "ADD" not in keywords, "COPY only: ADD fetches URLs and unpacks archives implicitly"
    for instruction in dockerfile.instructions:
        if instruction.keyword == "RUN":
            assert "http://" not in instruction.arguments
            assert "https://" not in instruction.arguments
            assert "--mount=type=secret" not in instruction.arguments
        if instruction.keyword in {"ENV", "ARG", "LABEL"}:
            names = re.findall(r"(\w+)=", instruction.arguments) or instruction.words()[:1]
            leaked = [n for n in names if SECRET_NAMES.search(n)]
            assert not leaked, f"line {instruction.line}: {instruction.keyword} {leaked}"


def test_the_container_starts_its_distributions_script(
    dockerfile: Dockerfile, image: Image
) -> None:
    entrypoint = dockerfile.final.all("ENTRYPOINT")[-1].exec_form()
    command = dockerfile.final.all("CMD")[-1].exec_form()
    assert entrypoint is not None, "exec form, so SIGTERM reaches Python"
    assert command is not None, "exec form"
    assert (*entrypoint, *command) == image.command
    scripts = tomllib.loads(image.pyproject.read_text())["project"]["scripts"]
    assert entrypoint[0] in scripts


def test_health_is_left_to_the_kubernetes_probes(dockerfile: Dockerfile, image: Image) -> None:
    healthchecks = dockerfile.final.all("HEALTHCHECK")
    assert healthchecks, "say explicitly how health is checked"
    if healthchecks[-1].arguments.strip().upper() == "NONE":
        assert any("probe" in c for c in dockerfile.comments), "explain where health is checked"
        manifest = image.manifest.read_text()
        if image is OPERATOR:
            assert "path: /healthz" in manifest
            assert "path: /readyz" in manifest
        else:
            assert "startupProbe:" in manifest


def test_the_exposed_port_is_the_one_the_manifest_uses(
    dockerfile: Dockerfile, image: Image
) -> None:
    exposed = {w.split("/")[0] for i in dockerfile.final.all("EXPOSE") for w in i.words()}
    assert exposed == {image.port}
    manifest = image.manifest.read_text()
    if image is OPERATOR:
        assert f"containerPort: {image.port}" in manifest
    else:
        assert f'args: [--port, "{image.port}"' in manifest, "the demo sidecar serves that port"
        assert f"command: [{image.command[0]}]" in manifest


def test_both_images_are_built_on_one_base_with_the_arguments_the_build_script_passes() -> None:
    """hack/image/build.sh builds both Dockerfiles on one Debian-made base: each declares the
    build arguments it passes, with the same defaults (the official image and its python)."""
    operator, emulator = (parse_dockerfile(i.dockerfile) for i in (OPERATOR, EMULATOR))
    assert operator.global_args == emulator.global_args
    assert operator.global_args["PYTHON"] == "/usr/local/bin/python"
    passed = set(re.findall(r"--build-arg (\w+)=", BUILD_SCRIPT.read_text()))
    assert passed == {"PYTHON_IMAGE", "PYTHON", "SOURCE_DATE_EPOCH"}
    for parsed in (operator, emulator):
        build = parsed.stages[0]
        declared = {i.arguments.partition("=")[0] for i in build.all("ARG")}
        assert {"PYTHON_IMAGE", "PYTHON"} <= set(parsed.global_args)
        assert "PYTHON" in declared, "redeclared in the stage"
        assert "SOURCE_DATE_EPOCH" in declared, "the project's own install is reproducible"
        for command in _runs(build):
            if "--python" in command or "pip install" in command:
                assert "${PYTHON}" in command, f"{command}: the interpreter comes from PYTHON"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        candidates = [body, body.removeprefix("**/")]
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(fnmatch.fnmatch(p, c) for p in prefixes for c in candidates) or any(
            fnmatch.fnmatch(part, body.removeprefix("**/"))
            for part in parts
            if body.startswith("**/")
        ):
            ignored = not negate
    return ignored


def _patterns(dockerignore: Path) -> list[str]:
    return [
        line.strip()
        for line in dockerignore.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


@pytest.mark.parametrize(
    ("path", "in_context"),
    [
        pytest.param("pyproject.toml", True, id="the project metadata goes in"),
        pytest.param("uv.lock", True, id="the lock file goes in"),
        pytest.param("operator/azure_jit_operator/cli.py", True, id="the package goes in"),
        pytest.param("emulator/pyproject.toml", True, id="the workspace members' metadata goes in"),
        pytest.param(
            "emulator/azure_arm_emulator/core.py", False, id="the emulator's code stays out"
        ),
        pytest.param(
            "devtools/azure_jit_devtools/cli.py", False, id="the dev tooling's code stays out"
        ),
        pytest.param(".git/config", False, id="git history stays out"),
        pytest.param(".venv/bin/python", False, id="the local virtualenv stays out"),
        pytest.param("tests/conftest.py", False, id="tests stay out"),
        pytest.param("deploy/base/deployment.yaml", False, id="manifests stay out"),
        pytest.param(
            "operator/azure_jit_operator/__pycache__/cli.cpython-311.pyc",
            False,
            id="bytecode caches stay out",
        ),
        pytest.param("admin.kubeconfig", False, id="kubeconfigs stay out"),
        pytest.param("operator/.env", False, id="env files stay out"),
        pytest.param("certs/ca-key.pem", False, id="keys stay out"),
    ],
)
def test_the_operator_build_context_holds_only_what_the_image_needs(
    path: str, in_context: bool
) -> None:
    assert _ignored(path, _patterns(OPERATOR.dockerignore)) is not in_context


@pytest.mark.parametrize(
    ("path", "in_context"),
    [
        pytest.param("pyproject.toml", True, id="the workspace metadata goes in"),
        pytest.param("uv.lock", True, id="the lock file goes in"),
        pytest.param("emulator/pyproject.toml", True, id="the emulator's metadata goes in"),
        pytest.param("emulator/README.md", True, id="the emulator's readme goes in"),
        pytest.param("emulator/azure_arm_emulator/core.py", True, id="the emulator goes in"),
        pytest.param(
            "emulator/azure_arm_emulator/worlds/default.yaml", True, id="its worlds go in"
        ),
        pytest.param("devtools/pyproject.toml", True, id="the dev tooling's metadata goes in"),
        pytest.param(
            "operator/azure_jit_operator/cli.py", False, id="the operator's code stays out"
        ),
        pytest.param(
            "devtools/azure_jit_devtools/cli.py", False, id="the dev tooling's code stays out"
        ),
        pytest.param("emulator/Dockerfile", False, id="the Dockerfile itself stays out"),
        pytest.param(".git/config", False, id="git history stays out"),
        pytest.param(".venv/bin/python", False, id="the local virtualenv stays out"),
        pytest.param("tests/unit/emulator/__init__.py", False, id="tests stay out"),
        pytest.param("build/images/azure-arm-emulator.oci.tar", False, id="built images stay out"),
        pytest.param(
            "emulator/azure_arm_emulator/__pycache__/core.cpython-311.pyc",
            False,
            id="bytecode caches stay out",
        ),
        pytest.param("emulator/admin.kubeconfig", False, id="kubeconfigs stay out"),
        pytest.param("emulator/.env", False, id="env files stay out"),
        pytest.param("emulator/azure_arm_emulator/ca.pem", False, id="certificates stay out"),
    ],
)
def test_the_emulator_build_context_holds_only_what_the_image_needs(
    path: str, in_context: bool
) -> None:
    assert _ignored(path, _patterns(EMULATOR.dockerignore)) is not in_context


def test_everything_the_dockerfile_copies_exists_and_is_in_the_build_context(
    dockerfile: Dockerfile, image: Image
) -> None:
    patterns = _patterns(image.dockerignore)
    for instruction in dockerfile.instructions:
        if instruction.keyword != "COPY" or "from" in instruction.flags():
            continue
        for source in instruction.words()[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert not _ignored(source.rstrip("/"), patterns), f"{source} is in .dockerignore"
