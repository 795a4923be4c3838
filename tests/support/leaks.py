"""A test that leaves an operator behind fails: no operator thread, no thread of the
operator's Kubernetes client pool, and no ``azure-jit-operator run`` child process may
outlive the test that started it (session servers such as the emulator are not counted)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

LEAKY_THREADS = ("operator", "kube-api")
OPERATOR_COMMAND = ("azure_jit_operator.cli", "run")


def _operator_threads() -> set[str]:
    return {
        f"{t.name}#{t.ident}"
        for t in threading.enumerate()
        if t.is_alive() and t.name.startswith(LEAKY_THREADS)
    }


def _operator_processes() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = next(
            (line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), ""
        )
        args = [a.decode(errors="replace") for a in cmdline]
        if ppid == str(os.getpid()) and all(part in args for part in OPERATOR_COMMAND):
            found.add(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_operator_left_behind() -> Iterator[None]:
    threads, processes = _operator_threads(), _operator_processes()
    yield
    leaked_threads = _operator_threads() - threads
    leaked_processes = _operator_processes() - processes
    assert not leaked_threads, f"the test left operator threads running: {sorted(leaked_threads)}"
    assert not leaked_processes, (
        f"the test left operator processes running: {sorted(leaked_processes)}"
    )
