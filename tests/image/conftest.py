"""``make image-test``: the images ``make image`` built, run and looked into.

These tests run only when asked for by marker (``pytest tests/image -m image``, as
``make image-test`` does): a plain ``pytest tests`` (``make test``) deselects them, so it needs
no image and takes no longer. A missing archive or tool skips them, except under ``CI=true``,
where it fails them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.support.controlplane import in_ci
from tests.support.image import (
    EMULATOR_ARCHIVE,
    OPERATOR_ARCHIVE,
    OciImage,
    Podman,
    ToolMissingError,
    read_oci_archive,
    require_archive,
)

# Files read out of the images' layers for the tests to look at.
WANTED = ("var/lib/dpkg/status", "etc/passwd")

_T = TypeVar("_T")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "image" in (config.getoption("markexpr") or ""):
        return  # `-m image` (or any expression naming the marker) decides for itself
    deselected = [item for item in items if item.get_closest_marker("image")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("image")]


def _needed(make: Callable[[], _T]) -> _T:
    try:
        return make()
    except ToolMissingError as exc:
        if in_ci():
            pytest.fail(f"{exc} [CI=true: the image tests must run]", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def operator_image() -> OciImage:
    return _needed(lambda: read_oci_archive(require_archive(OPERATOR_ARCHIVE), wanted=WANTED))


@pytest.fixture(scope="session")
def emulator_image() -> OciImage:
    return _needed(lambda: read_oci_archive(require_archive(EMULATOR_ARCHIVE), wanted=WANTED))


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    engine = _needed(lambda: Podman.create(tmp_path_factory.mktemp("podman")))
    try:
        yield engine
    finally:
        engine.reset()
