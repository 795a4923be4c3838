"""The demo's child processes: the emulator and the operator, through the real CLI."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from azure_jit_devtools.localcluster.processes import wait_for

READY = re.compile(r"^emulator ready: (?P<url>https://\S+) ca=(?P<ca>\S+) admin=\S+$", re.M)
STOP_SECONDS = 30.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _spawn(name: str, module: str, args: list[str], work: Path, env: dict[str, str]) -> Child:
    log_path = work / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        )
    return Child(name, process, log_path)


def start_emulator(work: Path) -> tuple[Child, str, Path]:
    child = _spawn(
        "emulator",
        "azure_arm_emulator",
        ["--port", "0", "--cert-dir", str(work / "certs")],
        work,
        {},
    )

    def ready() -> re.Match[str] | None:
        if child.process.poll() is not None:
            raise RuntimeError(f"the emulator exited:\n{child.log()}")
        return READY.search(child.log())

    match = wait_for(ready, timeout=30, what="the emulator's ready line")
    return child, match["url"], Path(match["ca"])


def start_operator(work: Path, *, env: dict[str, str]) -> Child:
    child = _spawn(
        "operator",
        "azure_jit_operator.cli",
        ["run", "--standalone", "--log-format", "plain"],
        work,
        env,
    )
    return child
