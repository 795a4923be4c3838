"""The benchmark environment: the real control plane, the emulator as a process with a
generated world, and the operator as a separate process (so its RSS and CPU are its own).

Everything listens on 127.0.0.1. One environment serves every benchmark of a run; each
benchmark takes its own namespace and resets the emulator to the world.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from tests.support.emulator import EmulatorEndpoint, EmulatorProcess, start_emulator_process
from tests.support.identity import (
    AMBIENT_CREDENTIAL_VARIABLES,
    OPERATOR,
    workload_identity_env,
    write_service_account_token,
)

from azure_arm_emulator.admin_client import SyncAdminClient
from azure_jit_devtools.localcluster.binaries import locate_binaries
from azure_jit_devtools.localcluster.cluster import ControlPlane, start_control_plane
from azure_jit_devtools.localcluster.processes import free_port
from benchmarks.kube import Kube, wait_until
from benchmarks.profiling import sampled
from benchmarks.report import RESULTS_DIR
from benchmarks.world import Layout, write_world

REPO_ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class ProcessStats:
    rss_bytes: int
    peak_rss_bytes: int
    cpu_seconds: float


def process_stats(pid: int) -> ProcessStats:
    """RSS, peak RSS and user+system CPU seconds of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text()
    after_name = stat.rsplit(")", 1)[1].split()
    utime, stime = int(after_name[11]), int(after_name[12])
    return ProcessStats(
        rss_bytes=int(fields["VmRSS"].split()[0]) * 1024,
        peak_rss_bytes=int(fields["VmHWM"].split()[0]) * 1024,
        cpu_seconds=(utime + stime) / CLK_TCK,
    )


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int
    probe_port: int
    started: float
    profile: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def stats(self) -> ProcessStats:
        return process_stats(self.pid)

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """Every sample on /metrics: name -> [(labels, value)]."""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=30
        ) as response:
            text = response.read().decode()
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return samples

    def metric(self, name: str, **labels: str) -> float:
        return sum(
            value
            for found, value in self.metrics().get(name, [])
            if all(found.get(k) == v for k, v in labels.items())
        )

    def arm_calls(self) -> dict[str, list[tuple[float, float, str]]]:
        """The probe's ARM calls per reconcile: "vm/<vm name>" (a VM's reconciles, for all its
        requests), "request/<name>" (a request not on a VM yet), "policy/<name>"."""
        if not self.probe_port:
            return {}
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.probe_port}/calls", timeout=60
        ) as response:
            raw: dict[str, list[list[Any]]] = json.loads(response.read())
        return {k: [(float(a), float(b), str(op)) for a, b, op in v] for k, v in raw.items()}

    def memory_report(self) -> str:
        """tracemalloc's top allocation sites in the operator (BENCH_TRACEMALLOC runs)."""
        if not self.probe_port:
            return ""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.probe_port}/memory", timeout=300
        ) as response:
            return str(response.read().decode())

    def clear_arm_calls(self) -> None:
        if self.probe_port:
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.probe_port}/calls", method="DELETE"
            )
            urllib.request.urlopen(request, timeout=30).close()

    def sampled(self, label: str) -> contextlib.AbstractContextManager[None]:
        """py-spy over the block when the environment profiles (results/<label>.pyspy.txt)."""
        return sampled(self.pid, RESULTS_DIR / f"{label}.pyspy.txt" if self.profile else None)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, *, kill: bool = False, timeout: float = 120.0) -> float:
        """SIGTERM (graceful) or SIGKILL; the seconds until the process was gone."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return time.monotonic() - started

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


class Environment:
    def __init__(
        self,
        *,
        work_dir: Path,
        control_plane: ControlPlane,
        emulator: EmulatorProcess,
        layout: Layout,
        arm_latency: float,
        profile: bool = False,
        tracemalloc: int = 0,
    ) -> None:
        self.work_dir = work_dir
        self.tracemalloc = tracemalloc  # frames per allocation traced in the operator (0: off)
        self.profile = profile  # sample the operator with py-spy during measured phases
        self.control_plane = control_plane
        self.emulator = emulator
        self.layout = layout
        self.arm_latency = arm_latency
        self.kube = Kube(control_plane)
        assert emulator.endpoint is not None
        self.endpoint: EmulatorEndpoint = emulator.endpoint
        self.admin = SyncAdminClient(self.endpoint.base_url, self.endpoint.ca_path)
        self._token_file = write_service_account_token(work_dir / "sa-token", OPERATOR.subject)

    def namespace(self, stem: str) -> str:
        name = f"bench-{stem}-{secrets.token_hex(3)}"
        self.kube.create_namespace(name)
        return name

    def reset_emulator(self, **settings: Any) -> None:
        """Back to the world; the fixed ARM latency and any other settings applied."""
        self.admin.reset()
        self.admin.update_settings(arm_latency_seconds=self.arm_latency, **settings)

    def operator_env(self, namespace: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in AMBIENT_CREDENTIAL_VARIABLES}
        env.update(workload_identity_env(self.endpoint, token_file=self._token_file))
        pythonpath = [str(REPO_ROOT / "operator"), str(REPO_ROOT), env.get("PYTHONPATH", "")]
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(p for p in pythonpath if p),
                "PYTHONUNBUFFERED": "1",
                "AZURE_JIT_ARM_ENDPOINT": self.endpoint.base_url,
                "AZURE_JIT_CA_BUNDLE": str(self.endpoint.ca_path),
                "AZURE_JIT_KUBECONFIG": str(self.control_plane.kubeconfig),
                "AZURE_JIT_NAMESPACES": namespace,
                "AZURE_JIT_STANDALONE": "true",
                "AZURE_JIT_LOG_FORMAT": "json",
                **extra,
            }
        )
        return env

    def start_operator(
        self,
        namespace: str,
        *,
        name: str = "operator",
        probe: bool = True,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
        wait_ready: bool = True,
    ) -> OperatorProcess:
        metrics_port = free_port()
        probe = probe or bool(self.tracemalloc)
        probe_port = free_port() if probe else 0
        if self.tracemalloc:
            env = {**(env or {}), "BENCH_TRACEMALLOC": str(self.tracemalloc)}
        environment = self.operator_env(
            namespace,
            AZURE_JIT_METRICS_PORT=str(metrics_port),
            **({"BENCH_PROBE_PORT": str(probe_port)} if probe else {}),
            **(env or {}),
        )
        log_path = self.work_dir / f"{name}-{namespace}.log"
        argv = command or [sys.executable, "-m", "benchmarks.operator_main"]
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=environment,
                cwd=REPO_ROOT,
            )
        handle = OperatorProcess(
            process=process,
            log_path=log_path,
            metrics_port=metrics_port,
            probe_port=probe_port,
            started=time.monotonic(),
            profile=self.profile,
        )
        if wait_ready:
            wait_operator_ready(handle)
        return handle


def wait_operator_ready(handle: OperatorProcess, *, timeout: float = 120.0) -> float:
    def ready() -> bool:
        if handle.process.poll() is not None:
            raise RuntimeError(f"the operator exited:\n{handle.log()[-4000:]}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{handle.metrics_port}/readyz", timeout=2
            ) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    return wait_until(ready, timeout=timeout, what="the operator to be ready", interval=0.05)


@contextlib.contextmanager
def environment(
    *,
    layout: Layout,
    arm_latency: float,
    keep: bool = False,
    profile: bool = False,
    tracemalloc: int = 0,
    progress: Any = print,
) -> Iterator[Environment]:
    work_dir = Path(tempfile.mkdtemp(prefix="azure-jit-bench-"))
    progress(f"work directory {work_dir}")
    bin_dir = locate_binaries(REPO_ROOT / "hack" / "envtest" / "build.sh")
    world = write_world(work_dir / "world.yaml", layout)
    with start_control_plane(bin_dir, crd_dir=REPO_ROOT / "crds") as control_plane:
        progress(f"control plane up in {control_plane.start_seconds:.1f}s")
        emulator = start_emulator_process(
            work_dir / "emulator", "--world", str(world), "--arm-latency", str(arm_latency)
        )
        progress(f"emulator up with {layout.vms} VMs in {layout.resource_groups} resource groups")
        try:
            yield Environment(
                work_dir=work_dir,
                control_plane=control_plane,
                emulator=emulator,
                layout=layout,
                arm_latency=arm_latency,
                profile=profile,
                tracemalloc=tracemalloc,
            )
        finally:
            emulator.stop()
            if not keep:
                with contextlib.suppress(OSError):
                    for path in sorted(work_dir.rglob("*"), reverse=True):
                        path.unlink() if path.is_file() or path.is_symlink() else path.rmdir()
                    work_dir.rmdir()
