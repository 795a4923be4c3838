"""What the built images hold, read from the OCI archives themselves: the image's own
distribution and its locked dependencies, run by a numeric non-root user, on a base with no
compiler and no apt. The base has dpkg (Essential in Debian; its database tells scanners what
is installed), but no package was installed with it after the base: no package lists, no
compiler package in its database."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.support.image import USER, OciImage, dpkg_packages
from tests.support.repo import ROOT

pytestmark = pytest.mark.image

SITE = "app/.venv/lib/python3.11/site-packages"
BIN_DIRS = r"^(usr/)?(local/)?s?bin/"
COMPILERS = r"(gcc|cc|c\+\+|g\+\+|clang|tcc|x86_64-linux-gnu-(gcc|g\+\+|cpp)(-\d+)?)(-\d+)?"
# Debian packages that compile (gcc-12-base, libgcc-s1: only libgcc's runtime, not these).
BUILD_PACKAGES = re.compile(
    r"(gcc|g\+\+|cpp|clang|tcc)(-\d+)?|binutils|build-essential|make|libc6-dev"
)
APT_TOOLS = r"(apt|apt-get|apt-cache|apt-config|apt-key|apt-mark|aptitude)"


def _locked_packages(group: str) -> set[str]:
    """The names in one of the operator's dependency groups (test, dev), without pins."""
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"][group]
    return {re.split(r"[=<>\[ ]", name)[0].lower().replace("-", "_") for name in groups}


@pytest.fixture(params=["operator", "emulator"])
def image(request: pytest.FixtureRequest) -> OciImage:
    value: OciImage = request.getfixturevalue(f"{request.param}_image")
    return value


def test_it_runs_as_the_deployments_numeric_non_root_user(image: OciImage) -> None:
    assert image.config.get("User") == USER
    passwd = image.files["etc/passwd"].decode()
    assert re.search(r"^[\w-]+:x:65532:65532::/nonexistent:/usr/sbin/nologin$", passwd, re.M)


def test_it_starts_its_own_script_from_the_virtualenv(image: OciImage) -> None:
    entrypoint = image.config["Entrypoint"]
    assert image.env["PATH"].split(":")[0] == "/app/.venv/bin"
    assert f"app/.venv/bin/{entrypoint[0]}" in image.paths
    assert image.paths["app/.venv/bin/python"] == "symlink"


def test_it_has_no_compiler(image: OciImage) -> None:
    assert image.matching(BIN_DIRS + COMPILERS + "$") == []
    assert image.matching(r"(^|/)cc1(plus)?$") == [], "no compiler proper either"
    installed = dpkg_packages(image.files["var/lib/dpkg/status"])
    assert "python3.11" in installed
    assert sorted(p for p in installed if BUILD_PACKAGES.fullmatch(p)) == []


def test_it_has_no_apt_and_no_package_lists(image: OciImage) -> None:
    assert image.matching(BIN_DIRS + APT_TOOLS + "$") == []
    assert image.matching(r"^var/lib/apt/lists/.") == []
    assert image.matching(r"^var/cache/apt/archives/.*\.deb$") == []
    assert "apt" not in dpkg_packages(image.files["var/lib/dpkg/status"])


def test_it_has_no_uv_no_build_sources_and_no_test_or_dev_packages(image: OciImage) -> None:
    assert image.matching(r"(^|/)uv$") == [], "uv stays in the build stage"
    assert image.matching(r"^src(/|$)") == [], "the build stage's sources stay there"
    assert image.matching(r"(^|/)conftest\.py$") == []
    assert image.matching(rf"^{SITE}/tests(/|$)") == [], "nothing of the project's tests"
    unwanted = _locked_packages("test") | _locked_packages("dev")
    unwanted -= {"azure_arm_emulator"}  # the emulator's image holds that one, checked below
    installed = {
        name.split("-")[0].lower()
        for name in image.matching(rf"^{SITE}/[^/]+\.dist-info$")
        for name in [name.rsplit("/", 1)[1]]
    }
    assert installed & unwanted == set(), "the test and dev groups stay out"
    assert image.matching(r"^app/\.venv/.*\.pth$") == [], "no editable install (a .pth file)"


def test_the_operator_image_holds_the_operator_and_nothing_of_the_emulator(
    operator_image: OciImage,
) -> None:
    assert f"{SITE}/azure_jit_operator/cli.py" in operator_image.paths
    assert operator_image.config["Entrypoint"] + operator_image.config["Cmd"] == [
        "azure-jit-operator",
        "run",
    ]
    assert operator_image.matching(r"azure_arm_emulator") == []
    assert operator_image.matching(r"azure_jit_devtools") == []


def test_the_emulator_image_holds_the_emulator_and_nothing_of_the_operator(
    emulator_image: OciImage,
) -> None:
    assert f"{SITE}/azure_arm_emulator/command.py" in emulator_image.paths
    assert f"{SITE}/azure_arm_emulator/worlds/default.yaml" in emulator_image.paths
    assert emulator_image.config["Entrypoint"] == ["azure-arm-emulator"]
    assert emulator_image.matching(r"azure_jit_(operator|devtools)") == []
    for package in ("kopf", "kubernetes", "azure"):  # the emulator imports none of them
        assert emulator_image.matching(rf"^{SITE}/{package}/") == [], package
