"""The images ``make image`` builds, for ``make image-test`` (tests/image): what an OCI archive
holds, read with nothing but ``tarfile``, and ``podman`` to run it the way the Deployment does
(read-only root, an in-memory /tmp, numeric non-root user, no capabilities).

Podman here uses a store of its own in a temporary folder, so every session loads the archive
itself (the file ``make image`` wrote, not buildah's store). Two settings make it run on this
kind of machine, and change nothing elsewhere: the OCI runtime is ``runc`` (``crun`` refuses a
hybrid cgroup v1/v2 layout) and the containers' resource limits are set no higher than this
process's own (without CAP_SYS_RESOURCE podman's defaults cannot be set).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import subprocess
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from azure_jit_devtools.localcluster.processes import wait_for as poll_until
from tests.support.controlplane import in_ci
from tests.support.repo import ROOT

IMAGE_OUT = ROOT / os.environ.get("IMAGE_OUT", "build/images")
OPERATOR_ARCHIVE = IMAGE_OUT / "azure-jit-operator.oci.tar"
EMULATOR_ARCHIVE = IMAGE_OUT / "azure-arm-emulator.oci.tar"
USER = "65532:65532"  # the Deployment's runAsUser / runAsGroup
STOP_SECONDS = 90  # the Deployment's terminationGracePeriodSeconds

_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


# --------------------------------------------------------------------------- OCI archives


@dataclass
class OciImage:
    """One image of an OCI archive (``oci-archive:``): its config and its file system, the
    layers applied in order with their whiteouts."""

    archive: Path
    image_id: str  # the config's digest, what podman calls the image ID
    config: dict[str, Any]  # the image config's "config": User, Env, Entrypoint, Cmd, ...
    paths: dict[str, str] = field(default_factory=dict)  # path (no leading /) -> type
    files: dict[str, bytes] = field(default_factory=dict)  # contents of the paths asked for
    unpacked_bytes: int = 0

    @property
    def env(self) -> dict[str, str]:
        return dict(item.partition("=")[::2] for item in self.config.get("Env") or [])

    def matching(self, pattern: str) -> list[str]:
        """Paths that match ``pattern`` (a regular expression, searched)."""
        compiled = re.compile(pattern)
        return sorted(p for p in self.paths if compiled.search(p))


def _blob(archive: tarfile.TarFile, digest: str) -> IO[bytes]:
    algorithm, _, value = digest.partition(":")
    handle = archive.extractfile(f"blobs/{algorithm}/{value}")
    assert handle is not None, f"{digest}: not a file in the archive"
    return handle


def _normal(name: str) -> str:
    return name.removeprefix("./").strip("/")


def _apply_layer(image: OciImage, layer: tarfile.TarFile, wanted: set[str]) -> None:
    for member in layer:
        path = _normal(member.name)
        if not path:
            continue
        parent, _, base = path.rpartition("/")
        if base == _OPAQUE:
            prefix = f"{parent}/"
            for known in [p for p in image.paths if p.startswith(prefix)]:
                del image.paths[known]
            continue
        if base.startswith(_WHITEOUT):
            gone = f"{parent}/{base.removeprefix(_WHITEOUT)}".strip("/")
            for known in [p for p in image.paths if p == gone or p.startswith(f"{gone}/")]:
                del image.paths[known]
            continue
        kind = "dir" if member.isdir() else "symlink" if member.issym() else "file"
        image.paths[path] = kind
        if member.isfile():
            image.unpacked_bytes += member.size
            if path in wanted:
                handle = layer.extractfile(member)
                assert handle is not None
                image.files[path] = handle.read()


def read_oci_archive(archive: Path, *, wanted: Sequence[str] = ()) -> OciImage:
    """The (single) image in ``archive``, with the contents of the ``wanted`` paths."""
    with tarfile.open(archive) as outer:
        index = json.load(_blob_or_file(outer, "index.json"))
        descriptor = index["manifests"][0]
        manifest = json.load(_blob(outer, descriptor["digest"]))
        if "manifests" in manifest:  # an image index inside: take its first image
            manifest = json.load(_blob(outer, manifest["manifests"][0]["digest"]))
        config = json.load(_blob(outer, manifest["config"]["digest"]))
        image = OciImage(
            archive=archive,
            image_id=manifest["config"]["digest"],
            config=dict(config.get("config") or {}),
        )
        for layer in manifest["layers"]:
            # Stream mode, any compression (gzip, zstd where Python has it, none).
            with tarfile.open(fileobj=_blob(outer, layer["digest"]), mode="r|*") as tar:
                _apply_layer(image, tar, set(wanted))
    return image


def _blob_or_file(archive: tarfile.TarFile, name: str) -> IO[bytes]:
    handle = archive.extractfile(name)
    assert handle is not None, f"{name}: not in the archive"
    return handle


def dpkg_packages(status: bytes) -> dict[str, str]:
    """Package -> version from a dpkg status file (installed packages only)."""
    packages: dict[str, str] = {}
    for stanza in status.decode().split("\n\n"):
        fields = dict(
            line.partition(": ")[::2] for line in stanza.splitlines() if ": " in line[:40]
        )
        if "Package" in fields and "installed" in fields.get("Status", "").split():
            packages[fields["Package"]] = fields.get("Version", "")
    return packages


# --------------------------------------------------------------------------- podman


class ToolMissingError(RuntimeError):
    pass


def require_archive(archive: Path) -> Path:
    if not archive.is_file():
        raise ToolMissingError(f"{archive.relative_to(ROOT)} not built (run `make image`)")
    return archive


def _storage_driver(path: Path) -> str:
    override = os.environ.get("IMAGE_STORAGE_DRIVER")
    if override:
        return override
    kind = subprocess.run(
        ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    return "vfs" if kind == "overlayfs" else "overlay"  # overlay does not stack on overlay


def _limits() -> list[str]:
    files_soft, files_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    processes_soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    processes = 4096 if processes_soft == resource.RLIM_INFINITY else min(4096, processes_soft)
    return [
        f"--ulimit=nofile={files_soft}:{files_hard}",
        f"--ulimit=nproc={processes}:{processes}",
    ]


@dataclass
class Container:
    """A ``podman run`` in the foreground: its output goes to ``log_path``."""

    podman: Podman
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def running(self) -> bool:
        return self.process.poll() is None

    def exec(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.podman.run_command("exec", self.name, *argv, check=False)

    def stop(self, timeout: int = STOP_SECONDS) -> int:
        """SIGTERM (the image's STOPSIGNAL), SIGKILL after ``timeout`` s; the exit status."""
        if self.process.poll() is None:
            self.podman.run_command("stop", f"--time={timeout}", self.name, check=False)
            try:
                self.process.wait(timeout=timeout + 30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass
class Podman:
    """podman with a store of its own under ``home``."""

    home: Path
    runtime: str | None
    driver: str

    @classmethod
    def create(cls, home: Path) -> Podman:
        hint = " [CI=true: a missing image tool is a failure]" if in_ci() else ""
        if shutil.which("podman") is None:
            raise ToolMissingError(f"no podman (hack/image/tools.sh podman runc){hint}")
        runtime = "runc" if shutil.which("runc") else None
        home.mkdir(parents=True, exist_ok=True)
        return cls(home=home, runtime=runtime, driver=_storage_driver(home))

    def command(self, *args: str) -> list[str]:
        return [
            "podman",
            f"--root={self.home / 'storage'}",
            f"--runroot={self.home / 'run'}",
            f"--tmpdir={self.home / 'libpod'}",
            f"--storage-driver={self.driver}",
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
            *([f"--runtime={self.runtime}"] if self.runtime else []),
            *args,
        ]

    def run_command(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.command(*args), capture_output=True, text=True, check=False, timeout=600
        )
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {done.returncode}\n{done.stderr}")
        return done

    def load(self, image: OciImage) -> str:
        """Load the archive; its image ID."""
        self.run_command("load", "--quiet", f"--input={image.archive}")
        listed = self.run_command("image", "inspect", "--format={{.Id}}", image.image_id)
        loaded = listed.stdout.strip()
        assert image.image_id.endswith(loaded), f"loaded {loaded}, archive has {image.image_id}"
        return loaded

    def start(
        self,
        image_id: str,
        *,
        name: str,
        log_path: Path,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        mounts: Mapping[Path, str] | None = None,
        writable_mounts: Mapping[Path, str] | None = None,
    ) -> Container:
        """Run as the Deployment does: the pod's user, read-only root file system, an
        in-memory /tmp (its emptyDir), all capabilities dropped, no privilege escalation;
        on the host's network, where the control plane and the emulator listen on loopback.
        ``mounts`` are bind-mounted read-only, ``writable_mounts`` read-write."""
        volumes = [f"--volume={host}:{inside}:ro" for host, inside in (mounts or {}).items()]
        volumes += [
            f"--volume={host}:{inside}:rw" for host, inside in (writable_mounts or {}).items()
        ]
        argv = self.command(
            "run",
            "--rm",
            f"--name={name}",
            "--network=host",
            f"--user={USER}",
            "--read-only",
            "--read-only-tmpfs=false",
            "--tmpfs=/tmp:rw,size=16m,mode=1777",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            *_limits(),
            *volumes,
            *(f"--env={key}={value}" for key, value in (env or {}).items()),
            image_id,
            *args,
        )
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        return Container(podman=self, name=name, process=process, log_path=log_path)

    def reset(self) -> None:
        """Remove every container and image of this store, then the store."""
        self.run_command("rm", "--all", "--force", check=False)
        self.run_command("rmi", "--all", "--force", check=False)
        shutil.rmtree(self.home, ignore_errors=True)


@contextlib.contextmanager
def running(container: Container) -> Iterator[Container]:
    """Stop (SIGTERM) the container on the way out, whatever happened."""
    try:
        yield container
    finally:
        container.stop()


def wait_for_log(container: Container, pattern: str, *, timeout: float) -> re.Match[str]:
    compiled = re.compile(pattern, re.MULTILINE)

    def found() -> re.Match[str] | None:
        match = compiled.search(container.log())
        if match is None and not container.running():
            raise AssertionError(f"{container.name} exited before {pattern!r}:\n{container.log()}")
        return match

    try:
        return poll_until(found, timeout=timeout, interval=0.2, what=f"{pattern!r} in the log")
    except TimeoutError:
        raise AssertionError(
            f"{container.name}: no {pattern!r} in {timeout:g}s\n{container.log()}"
        ) from None
