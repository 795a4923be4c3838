"""Child processes of the local control plane, and polling with deadlines."""

from __future__ import annotations

import ctypes
import functools
import http.client
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, TypeVar

STOP_TIMEOUT = 10.0  # SIGTERM grace before SIGKILL
LOG_TAIL_LINES = 40

_T = TypeVar("_T")


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or used; the message carries server logs."""


def wait_for(
    predicate: Callable[[], _T | Literal[False] | None],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str = "condition",
) -> _T:
    """Call ``predicate`` until it returns something truthy and return that; time out loudly."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g}s")
        time.sleep(interval)  # polling until a deadline (noqa: sleep-ok)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent() -> Callable[[], object] | None:
    """Linux: a ``preexec_fn`` that makes the child get SIGKILL when the thread that started
    it dies (pytest killed by a CI timeout, say), so no server outlives the test run.
    Resolved here, in the parent, so the forked child only makes one libc call."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1
    return functools.partial(prctl, pr_set_pdeathsig, signal.SIGKILL)


class Server:
    """One child process whose combined output goes to a log file."""

    def __init__(self, name: str, argv: Sequence[str], *, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(),  # noqa: PLW1509 - one async-signal-safe call
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<no log: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, what: str) -> ControlPlaneError:
        state = "running" if self.alive() else f"exited with {self.process.returncode}"
        return ControlPlaneError(
            f"{self.name} {what} ({state}); last lines of {self.log_path.name}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; always reaps the child."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()


def address_in_use(server: Server) -> bool:
    return not server.alive() and "address already in use" in server.log_tail(200)


def http_get(conn: http.client.HTTPConnection, path: str) -> tuple[int, str]:
    """(status, body) or (0, error) when the server is not answering yet."""
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        return 0, str(exc)
    finally:
        conn.close()
