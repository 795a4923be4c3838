"""A real Prometheus (Debian's package, run directly on loopback) scrapes the operator the
way the shipped ServiceMonitor does while a request opens and expires; PromQL over its HTTP
API shows the VM port open and then closed under the request's own namespace, Azure call
rates, and open-latency and close-lag percentiles. Every dashboard query and alert rule
evaluates without error against those live series."""

from __future__ import annotations

import json
import math
import time
from datetime import timedelta
from typing import Any

import pytest

from tests.support.controlplane import ControlPlane
from tests.support.emulator import EmulatorEndpoint
from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld, operator_running, operator_settings, wait_for
from tests.support.prometheus import (
    MONITORING,
    OPERATOR_NAMESPACE,
    PrometheusServer,
    substitute_grafana_variables,
)

POLICY = policy_manifest(
    "web-admins",
    vms={"vm-web-01": [port_rule(22, prefixes=["198.51.100.0/24"], max_duration="3h")]},
)
DASHBOARD = MONITORING / "dashboards" / "azure-jit-operator.json"


def _a_number(result: list[dict[str, Any]]) -> bool:
    return len(result) == 1 and not math.isnan(float(result[0]["value"][1]))


# Drift checks every 5s give Prometheus a steady stream of Azure calls to rate over.
@pytest.mark.parametrize(
    "operator_overrides", [{"drift_interval": timedelta(seconds=5)}], ids=["5s drift checks"]
)
def test_prometheus_sees_the_port_open_then_closed_with_rates_and_percentiles(
    jit: JitWorld, prometheus: PrometheusServer
) -> None:
    with prometheus.scraping(jit.operator.metrics_port) as instance:
        jit.apply(POLICY)
        jit.wait_policy_ready("web-admins")
        jit.apply(request_manifest("ssh-inc-4711", duration="1h"))
        jit.wait_phase("ssh-inc-4711", "Active")

        port_22 = f'namespace="{jit.namespace}",policy="web-admins",vm="vm-web-01",port="22"'
        prometheus.wait_for_value(f"azure_jit_open_ports{{{port_22}}}", 1)
        prometheus.wait_for_value(
            f'azure_jit_requests_total{{namespace="{jit.namespace}",outcome="Active"}}', 1
        )
        prometheus.wait_for(
            f'sum(rate(azure_jit_azure_api_requests_total{{instance="{instance}"}}[1m])) > 0',
            timeout=30,
            what="a rate of Azure calls",
        )
        prometheus.wait_for(
            "histogram_quantile(0.9, sum by (le) "
            f'(rate(azure_jit_request_open_seconds_bucket{{instance="{instance}"}}[1m])))',
            _a_number,
            what="the open latency p90",
        )

        jit.jump(timedelta(hours=1, seconds=1))
        jit.wait_phase("ssh-inc-4711", "Expired")
        prometheus.wait_for_value(f"azure_jit_open_ports{{{port_22}}}", 0)
        prometheus.wait_for(
            "histogram_quantile(0.99, sum by (le) "
            f'(rate(azure_jit_close_lag_seconds_bucket{{instance="{instance}"}}[1m])))',
            _a_number,
            what="the close lag p99",
        )
        prometheus.wait_for_value(f'azure_jit_ports_open_past_expiry{{instance="{instance}"}}', 0)

        # The series keep the request's namespace (honorLabels), not the operator pod's.
        assert prometheus.query(f'azure_jit_open_ports{{namespace="{OPERATOR_NAMESPACE}"}}') == []
        assert prometheus.query('ALERTS{alertname="AzureJitPortOpenPastExpiry"}') == []


def test_every_dashboard_query_and_alert_rule_evaluates_against_live_series(
    jit: JitWorld, prometheus: PrometheusServer
) -> None:
    with prometheus.scraping(jit.operator.metrics_port):
        jit.apply(POLICY)
        jit.wait_policy_ready("web-admins")
        jit.apply(request_manifest("ssh", duration="30m"))
        jit.wait_phase("ssh", "Active")
        prometheus.wait_for(f'azure_jit_open_ports{{namespace="{jit.namespace}"}} == 1')

        dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                # Raises with Prometheus' error message if the query does not evaluate.
                prometheus.query(substitute_grafana_variables(target["expr"]))
        answered = prometheus.query(
            f'max by (namespace, vm, port) (azure_jit_open_ports{{namespace=~"{jit.namespace}"}})'
        )
        assert [r["metric"] for r in answered] == [
            {"namespace": jit.namespace, "vm": "vm-web-01", "port": "22"}
        ]

        def rules_evaluated() -> bool:
            rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
            return bool(rules) and all(r["health"] == "ok" for r in rules)

        wait_for(rules_evaluated, timeout=20, what="every alert rule to evaluate without error")
        groups = prometheus.api("rules")["groups"]
        firing = [
            alert["labels"]["alertname"]
            for group in groups
            for rule in group["rules"]
            for alert in rule.get("alerts", [])
            if alert["state"] == "firing"
            # Metrics are process-wide: earlier tests' namespaces may still hold series.
            and alert["labels"].get("namespace", jit.namespace)
            in (jit.namespace, OPERATOR_NAMESPACE)
        ]
        assert firing == []


def test_an_operator_scraped_by_prometheus_stops_without_delay(
    control_plane: ControlPlane,
    emulator_endpoint: EmulatorEndpoint,
    namespace: str,
    prometheus: PrometheusServer,
) -> None:
    # kopf waits 5s at shutdown for tasks it did not start, such as a scraper's idle
    # keep-alive connection: the endpoint closes every connection after answering.
    settings = operator_settings(control_plane, emulator_endpoint, namespace)
    with operator_running(settings) as operator, prometheus.scraping(operator.metrics_port):
        prometheus.wait_for(
            f'scrape_samples_scraped{{instance="127.0.0.1:{operator.metrics_port}"}} > 0'
        )
        started = time.monotonic()
        operator.stop()
        stopped_in = time.monotonic() - started
    assert stopped_in < 3.0
