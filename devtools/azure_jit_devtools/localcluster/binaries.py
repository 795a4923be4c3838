"""Finding (or building, through hack/envtest/build.sh) the control plane binaries."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from azure_jit_devtools.localcluster.processes import LOG_TAIL_LINES, ControlPlaneError

BINARIES = ("etcd", "kube-apiserver", "kubectl")


class BinariesUnavailableError(Exception):
    """The binaries cannot be had on this machine (no Go toolchain, nothing cached)."""


def _check_bin_dir(bin_dir: Path) -> list[str]:
    return [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]


def locate_binaries(
    build_script: Path, *, progress: Callable[[str], None] = lambda line: None
) -> Path:
    """The directory holding etcd, kube-apiserver and kubectl: ``KUBEBUILDER_ASSETS`` if set,
    else whatever ``build_script`` (hack/envtest/build.sh) builds or reuses. ``progress``
    gets its log lines.
    """
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        missing = _check_bin_dir(Path(assets))
        if missing:
            raise ControlPlaneError(f"KUBEBUILDER_ASSETS={assets} lacks {', '.join(missing)}")
        return Path(assets)

    log: list[str] = []
    with subprocess.Popen(
        [str(build_script)],
        cwd=build_script.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as build:
        assert build.stderr is not None
        assert build.stdout is not None
        for line in build.stderr:  # stdout holds one line only, so it cannot fill its pipe
            log.append(line.rstrip("\n"))
            progress(log[-1])
        stdout = build.stdout.read()
        returncode = build.wait()
    if returncode != 0:
        tail = "\n".join(log[-LOG_TAIL_LINES:])
        if shutil.which("go") is None:
            raise BinariesUnavailableError(
                "kube-apiserver, etcd and kubectl are not built and no Go toolchain is on PATH. "
                "Install Go >= 1.26 and run `make envtest` (or point KUBEBUILDER_ASSETS at a "
                f"directory holding {', '.join(BINARIES)})."
            )
        raise ControlPlaneError(f"{build_script} failed with exit code {returncode}:\n{tail}")
    lines = stdout.strip().splitlines()
    if not lines:
        raise ControlPlaneError(f"{build_script} printed no directory")
    bin_dir = Path(lines[-1])
    missing = _check_bin_dir(bin_dir)
    if missing:
        raise ControlPlaneError(f"{bin_dir} (from {build_script}) lacks {', '.join(missing)}")
    return bin_dir
