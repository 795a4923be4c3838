"""Starting and stopping a control plane leaves nothing behind, and a failed start says why."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.support.controlplane import ControlPlane, ControlPlaneError, start_control_plane


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _children_of_this_process() -> set[int]:
    """PIDs of live (non-zombie) children, from /proc (Linux)."""
    me = str(os.getpid())
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, parent = fields[0], fields[1]
        if parent == me and state != "Z":
            children.add(int(entry.name))
    return children


def test_stopping_a_control_plane_kills_its_processes_and_removes_its_files(
    control_plane: ControlPlane,
) -> None:
    before = _children_of_this_process()

    with start_control_plane(control_plane.bin_dir, crd_dir=None) as second:
        started = _children_of_this_process() - before
        work_dir = second.work_dir
        assert len(started) == 2, "expected exactly etcd and kube-apiserver"
        assert second.kubectl("get", "namespaces").returncode == 0

    assert not work_dir.exists()
    assert not any(_process_exists(pid) for pid in started)
    assert _children_of_this_process() - before == set()


def test_a_control_plane_that_cannot_start_reports_the_server_log(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("etcd", "kubectl"):
        (bin_dir / name).symlink_to(control_plane.bin_dir / name)
    broken = bin_dir / "kube-apiserver"
    broken.write_text("#!/bin/sh\necho 'E0101 flag --frobnicate: no such flag' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    before = _children_of_this_process()

    with (
        pytest.raises(ControlPlaneError, match="kube-apiserver exited during start") as failure,
        start_control_plane(bin_dir, crd_dir=None),
    ):
        pass  # pragma: no cover - start must fail

    assert "exited with 3" in str(failure.value)
    assert "no such flag" in str(failure.value)
    assert _children_of_this_process() - before == set(), "etcd was left running"
