"""The Grafana dashboard: every query is valid PromQL (promtool parses it), selects only
metrics and labels the operator exports, and the panels users watch are there."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.prometheus import (
    MONITORING,
    exported_metrics,
    substitute_grafana_variables,
    unknown_metric_uses,
)

DASHBOARD = MONITORING / "dashboards" / "azure-jit-operator.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# The views the dashboard exists for: a title fragment and the series its query must use.
REQUIRED_PANELS = {
    "Open ports per VM": "azure_jit_open_ports",
    "Request outcomes": "azure_jit_requests_total",
    "Open latency": "azure_jit_request_open_seconds_bucket",
    "Close lag": "azure_jit_close_lag_seconds_bucket",
    "ARM calls by operation": "azure_jit_azure_api_requests_total",
    "ARM errors and throttling": "azure_jit_azure_api_requests_total",
    "Ports open past expiry": "azure_jit_ports_open_past_expiry",
}


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def _panels() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def _queries() -> list[tuple[str, str]]:
    """(panel title / refId, PromQL with Grafana's variables substituted)."""
    return [
        (f"{panel['title']} / {target['refId']}", substitute_grafana_variables(target["expr"]))
        for panel in _panels()
        for target in panel["targets"]
    ]


@pytest.mark.parametrize(("where", "expr"), _queries(), ids=[w for w, _ in _queries()])
def test_dashboard_query_selects_only_exported_metrics_and_labels(where: str, expr: str) -> None:
    assert unknown_metric_uses(expr) == [], where


def test_every_dashboard_query_is_valid_promql(promtool: Path, tmp_path: Path) -> None:
    # promtool has no bare "parse" command; recording rules are parsed with the real parser.
    rules = [
        {"record": f"dashboard:query_{index}", "expr": expr}
        for index, (_, expr) in enumerate(_queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        [str(promtool), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_template_variables_come_from_exported_labels() -> None:
    exported = exported_metrics()
    for variable in _dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])
        assert match, f"variable {variable['name']}: {variable['definition']}"
        metric, label = match.groups()
        assert metric in exported, f"variable {variable['name']}: {metric} is not exported"
        assert label in exported[metric].labels


def test_panels_users_watch_are_there() -> None:
    panels = _panels()
    for fragment, metric in REQUIRED_PANELS.items():
        matching = [p for p in panels if fragment in p["title"]]
        assert matching, f"no panel titled like {fragment!r}"
        exprs = " ".join(t["expr"] for p in matching for t in p["targets"])
        assert metric in exprs, f"{fragment!r} does not query {metric}"


def test_latency_panels_show_percentiles_from_the_histograms() -> None:
    for fragment in ("Open latency", "Close lag"):
        [panel] = [p for p in _panels() if fragment in p["title"]]
        quantiles = sorted(
            float(re.match(r"histogram_quantile\(([\d.]+),", t["expr"])[1])  # type: ignore[index]
            for t in panel["targets"]
        )
        assert quantiles == [0.5, 0.9, 0.99]
        assert panel["fieldConfig"]["defaults"]["unit"] == "s"


def test_dashboard_is_importable_into_any_grafana() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "azure-jit-operator"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _panels():
        # No data source uid of someone's Grafana baked in: the variable picks one.
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]
        assert panel["description"].strip(), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']} is wider than the dashboard"
