"""Prometheus for tests: reading the operator's /metrics, and a real Prometheus server.

Loaded as a pytest plugin from ``tests/conftest.py``.

- :func:`scrape` reads an operator's ``/metrics`` once and parses it with prometheus-client's
  own parser into a :class:`Scrape` (metrics are process-global: compare two scrapes, or
  select label sets unique to the test, such as its namespace).
- ``prometheus_bin`` (session): the directory holding ``prometheus`` and ``promtool`` from
  Debian's ``prometheus`` package; ``hack/prometheus/install.sh`` installs it when missing.
  Locally a failed install skips the tests that need it; with ``CI=true`` it fails them.
- ``promtool`` (session): the ``promtool`` binary.
- ``prometheus`` (session): a :class:`PrometheusServer`, the real binary run directly (never
  the Debian service) on a free 127.0.0.1 port, with its own config, storage and log in a
  temp dir. It scrapes the targets a test hands to :meth:`PrometheusServer.scraping` every
  second and evaluates the operator's alert rules (``deploy/monitoring/rules``).
  Query with :meth:`PrometheusServer.query`; wait for data with
  :meth:`PrometheusServer.wait_for` (polls the query API with a deadline).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.controlplane import in_ci
from tests.support.repo import ROOT

INSTALL_SCRIPT = ROOT / "hack" / "prometheus" / "install.sh"
MONITORING = ROOT / "deploy" / "monitoring"
RULES_FILE = MONITORING / "rules" / "azure-jit-operator.rules.yml"
SERVICE_MONITOR = MONITORING / "servicemonitor.yaml"
OPERATOR_NAMESPACE = "azure-jit-system"
JOB = "azure-jit-operator"
SCRAPE_INTERVAL = "1s"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 5.0


# --------------------------------------------------------------------------- /metrics


@dataclass(frozen=True)
class Sample:
    name: str  # as exposed, with its suffix (_total, _bucket, _count, _sum, _created)
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Scrape:
    samples: tuple[Sample, ...]

    def series(self, name: str, **labels: str) -> list[Sample]:
        """Samples named ``name`` whose labels include ``labels``."""
        return [
            s
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float | None:
        """The one matching series' value; None when absent. Fails if several match."""
        found = self.series(name, **labels)
        if not found:
            return None
        assert len(found) == 1, f"{name}{labels} matches {len(found)} series: {found}"
        return found[0].value

    def total(self, name: str, **labels: str) -> float:
        """Sum over every matching series (0 when none): for counters and histogram parts."""
        return sum(s.value for s in self.series(name, **labels))

    def names(self) -> set[str]:
        return {s.name for s in self.samples}


def metrics_text(port: int, *, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=HTTP_TIMEOUT) as response:
        return str(response.read().decode("utf-8"))


def parse(text: str) -> Scrape:
    return Scrape(
        tuple(
            Sample(s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        )
    )


def scrape(port: int) -> Scrape:
    """One scrape of the operator's /metrics on 127.0.0.1:``port``."""
    return parse(metrics_text(port))


def http_status(port: int, path: str) -> tuple[int, str]:
    """Status and body of a GET on the operator's endpoint (probes answer 503 while starting)."""
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}{path}", timeout=HTTP_TIMEOUT
        ) as response:
            return int(response.status), str(response.read().decode())
    except urllib.error.HTTPError as exc:
        return int(exc.code), str(exc.read().decode())


# --------------------------------------------------------------------------- binaries


def locate_prometheus() -> Path:
    """The directory holding prometheus and promtool (installing Debian's package if needed).

    Raises RuntimeError with the installer's output when they cannot be had."""
    result = subprocess.run(
        [str(INSTALL_SCRIPT)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(
            f"{INSTALL_SCRIPT.relative_to(ROOT)} failed (exit {result.returncode}):\n"
            f"{result.stderr[-3000:]}"
        )
    return Path(lines[-1])


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    try:
        return locate_prometheus()
    except RuntimeError as exc:
        if in_ci():
            pytest.fail(f"Prometheus is required in CI: {exc}")
        pytest.skip(f"Prometheus is not available here (install Debian's prometheus): {exc}")


@pytest.fixture(scope="session")
def promtool(prometheus_bin: Path) -> Path:
    return prometheus_bin / "promtool"


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PromQLError(AssertionError):
    """Prometheus refused a query (bad syntax, wrong types); the message is its error."""


@dataclass
class PrometheusServer:
    """A real Prometheus on 127.0.0.1, scraping what :meth:`scraping` hands it."""

    process: subprocess.Popen[bytes]
    url: str
    work_dir: Path
    targets_dir: Path
    log_path: Path
    _targets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    # -- targets -----------------------------------------------------------------

    @contextlib.contextmanager
    def scraping(self, port: int, **labels: str) -> Iterator[str]:
        """Scrape 127.0.0.1:``port`` (job ``azure-jit-operator``, with the target labels of a
        ServiceMonitor target, ``namespace="azure-jit-system"`` among them) for the block;
        yields the ``instance`` label. Waits until Prometheus has scraped it once."""
        instance = f"127.0.0.1:{port}"
        # What the Prometheus Operator attaches to a ServiceMonitor's targets.
        target_labels = {
            "namespace": OPERATOR_NAMESPACE,
            "service": "azure-jit-operator-metrics",
            "endpoint": "metrics",
            "pod": f"azure-jit-operator-{port}",
        }
        self._targets[instance] = {"targets": [instance], "labels": target_labels | labels}
        self._write_targets()
        try:
            self.wait_for(
                f'up{{job="{JOB}",instance="{instance}"}} == 1',
                what=f"Prometheus to scrape {instance}",
            )
            yield instance
        finally:
            self._targets.pop(instance, None)
            self._write_targets()

    def _write_targets(self) -> None:
        # Atomic replace: Prometheus watches the directory and re-reads the file at once.
        path = self.targets_dir / "operators.json"
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(list(self._targets.values())), encoding="utf-8")
        partial.replace(path)

    # -- HTTP API ----------------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        request = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PromQLError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; the result vector (or a one-element list for a scalar)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def values(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """The query's result as {sorted label pairs: value}."""
        return {
            tuple(sorted(item["metric"].items())): float(item["value"][1])
            for item in self.query(expr)
        }

    def wait_for(
        self,
        expr: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        *,
        timeout: float = 20.0,
        what: str | None = None,
    ) -> list[dict[str, Any]]:
        """Poll an instant query until ``predicate(result)`` holds (default: non-empty)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if predicate(result):
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout:g}s waiting for {what or expr}; last result of "
                    f"{expr!r}: {result}"
                )
            time.sleep(0.2)  # polling the query API until a deadline (noqa: sleep-ok)

    def wait_for_value(
        self, expr: str, expected: float, *, timeout: float = 20.0, what: str | None = None
    ) -> None:
        """Poll until the query yields exactly one series with value ``expected``."""

        def holds(result: list[dict[str, Any]]) -> bool:
            return len(result) == 1 and math.isclose(float(result[0]["value"][1]), expected)

        self.wait_for(expr, holds, timeout=timeout, what=what or f"{expr} == {expected:g}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)


def service_monitor_endpoint() -> dict[str, Any]:
    """The scrape endpoint of deploy/monitoring/servicemonitor.yaml (what production uses)."""
    monitor = yaml.safe_load(SERVICE_MONITOR.read_text(encoding="utf-8"))
    endpoint: dict[str, Any] = monitor["spec"]["endpoints"][0]
    return endpoint


def prometheus_config(targets_dir: Path, *, rule_files: list[Path]) -> dict[str, Any]:
    """Scrape like the shipped ServiceMonitor does: its path and honorLabels, and the
    target labels the Prometheus Operator adds (``namespace`` among them, see
    :meth:`PrometheusServer.scraping`), so a wrong honorLabels would show in the tests."""
    endpoint = service_monitor_endpoint()
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "scrape_timeout": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
        },
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": JOB,
                "metrics_path": endpoint.get("path", "/metrics"),
                "honor_labels": bool(endpoint.get("honorLabels", False)),
                "file_sd_configs": [
                    {"files": [str(targets_dir / "*.json")], "refresh_interval": "1s"}
                ],
            }
        ],
    }


def start_prometheus(bin_dir: Path, work_dir: Path, *, rule_files: list[Path]) -> PrometheusServer:
    """Run the prometheus binary directly on a free loopback port; wait until it is ready."""
    targets_dir = work_dir / "targets"
    targets_dir.mkdir(parents=True, exist_ok=True)
    (targets_dir / "operators.json").write_text("[]", encoding="utf-8")
    config = work_dir / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(targets_dir, rule_files=rule_files)))
    port = free_port()
    log_path = work_dir / "prometheus.log"
    command = [
        str(bin_dir / "prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={work_dir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=work_dir
        )
    server = PrometheusServer(
        process=process,
        url=f"http://127.0.0.1:{port}",
        work_dir=work_dir,
        targets_dir=targets_dir,
        log_path=log_path,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{server.log()}")
        if _answers(f"{server.url}/-/ready"):
            return server
        if time.monotonic() >= deadline:
            server.stop()
            raise RuntimeError(f"prometheus not ready within {START_TIMEOUT:g}s:\n{server.log()}")
        time.sleep(0.1)  # polling readiness until a deadline (noqa: sleep-ok)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status) == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def prometheus(
    prometheus_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    server = start_prometheus(
        prometheus_bin, tmp_path_factory.mktemp("prometheus"), rule_files=[RULES_FILE]
    )
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- PromQL


@dataclass(frozen=True)
class MetricUse:
    """A metric name in a PromQL expression, with the label names its matchers use."""

    name: str
    labels: frozenset[str]


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{([^}]*)\}")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGES = re.compile(r"\[[^\]]*\]")
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "inf", "nan"})
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${datasource}": "",
    "$namespace": ".*",
}


def substitute_grafana_variables(expr: str) -> str:
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    return expr


def metric_uses(expr: str) -> list[MetricUse]:
    """The metric names an expression selects, with the label names matched on each.

    A small lexer, not a parser: strings, ``by (...)``-style label lists, ranges and offsets
    are removed, identifiers followed by ``(`` are functions or aggregations, the rest are
    metric names (validity of the PromQL itself is promtool's job)."""
    uses: list[MetricUse] = []
    text = _STRING.sub('""', expr)
    text = _LABEL_LISTS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    position = 0
    while match := _IDENTIFIER.search(text, position):
        name, position = match.group(), match.end()
        rest = text[position:].lstrip()
        if rest.startswith("(") or name.lower() in _KEYWORDS:
            continue
        if match.start() > 0 and (
            text[match.start() - 1].isdigit() or text[match.start() - 1] == "."
        ):
            continue  # the exponent or unit of a number
        labels: frozenset[str] = frozenset()
        if rest.startswith("{"):
            block = _MATCHERS.match(rest)
            assert block is not None, f"unbalanced matcher in {expr!r}"
            labels = frozenset(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", block[1]))
            position = text.index("}", position) + 1
        uses.append(MetricUse(name, labels))
    # A bare matcher such as {__name__="x"} names no identifier; count it as unknown.
    return uses


@dataclass(frozen=True)
class ExportedMetric:
    name: str  # the name a sample carries (with _total, _bucket, ...)
    labels: frozenset[str]


def exported_metrics() -> dict[str, ExportedMetric]:
    """Every sample name the operator's registry can expose, with its label names.

    Labelled metrics expose no sample until a label set is used, so their names are derived
    from their definitions in ``azure_jit_operator.metrics``; the process and runtime
    collectors are read from a live collection."""
    from prometheus_client.metrics import MetricWrapperBase  # noqa: PLC0415

    from azure_jit_operator import metrics  # noqa: PLC0415

    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
    }
    found: dict[str, ExportedMetric] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            labels = frozenset(value._labelnames)
            for suffix in suffixes[value._type]:
                extra = {"le"} if suffix == "_bucket" else set()
                found[value._name + suffix] = ExportedMetric(value._name + suffix, labels | extra)
    for family in metrics.REGISTRY.collect():
        for sample in family.samples:
            found.setdefault(sample.name, ExportedMetric(sample.name, frozenset(sample.labels)))
    return found


# Series Prometheus itself attaches to every scrape, and the labels of every target.
PROMETHEUS_SERIES = {"up": ExportedMetric("up", frozenset())}
TARGET_LABELS = frozenset(
    {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}
)


def unknown_metric_uses(expr: str) -> list[str]:
    """What an expression selects that the operator (or Prometheus) does not expose."""
    known = {**exported_metrics(), **PROMETHEUS_SERIES}
    problems = []
    for use in metric_uses(expr):
        metric = known.get(use.name)
        if metric is None:
            problems.append(f"metric {use.name} is not exported")
            continue
        unknown = use.labels - metric.labels - TARGET_LABELS
        if unknown:
            problems.append(f"{use.name} has no label(s) {', '.join(sorted(unknown))}")
    return problems
