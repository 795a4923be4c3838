"""The operator's alerts: promtool accepts the rule file and its unit tests pass, every alert
is tested firing and silent, carries what an on-call engineer needs (severity, summary,
description, a runbook that exists in the repo), selects only metrics the operator exports,
and the Prometheus Operator resource says exactly what the rule file says."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.support.prometheus import MONITORING, RULES_FILE, unknown_metric_uses
from tests.support.repo import ROOT

RULE_TESTS = RULES_FILE.with_name("azure-jit-operator.rules.test.yml")
PROMETHEUS_RULE = MONITORING / "prometheusrule.yaml"
RENDER_SCRIPT = ROOT / "hack" / "prometheus" / "render-prometheusrule.py"
RUNBOOKS = ROOT / "docs" / "runbooks"
RUNBOOK_BASE = "https://github.com/azure-jit-operator/azure-jit-operator/blob/main/docs/runbooks/"
SEVERITIES = {"critical", "warning", "info"}  # info: tells people, e.g. approvers
# What the issue asks the alerts to cover, by alert name.
REQUIRED_ALERTS = {
    "AzureJitPortOpenPastExpiry": "critical",
    "AzureJitOperatorDown": "critical",
    "AzureJitNoReconcileProgress": "warning",
    "AzureJitRequestStuckPending": "warning",
    "AzureJitAzureApiErrors": "warning",
    "AzureJitAzureApiThrottled": "warning",
    "AzureJitDriftCorrectedRepeatedly": "warning",
    "AzureJitRequestAwaitingApproval": "info",
}


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _promtool(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *args],
        cwd=RULES_FILE.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_promtool_accepts_the_rule_file(promtool: Path) -> None:
    checked = _promtool(promtool, "check", "rules", RULES_FILE.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in checked.stdout


def test_every_alert_fires_and_stays_silent_as_its_unit_tests_expect(promtool: Path) -> None:
    tested = _promtool(promtool, "test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    cases = [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for alert in _alerts():
        name = alert["alert"]
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in mine), f"{name}: no test where it fires"
        assert any(not case["exp_alerts"] for case in mine), f"{name}: no test where it is silent"


def test_the_alerts_cover_what_the_operator_must_be_watched_for() -> None:
    severities = {alert["alert"]: alert["labels"]["severity"] for alert in _alerts()}
    assert {name: severities.get(name) for name in REQUIRED_ALERTS} == REQUIRED_ALERTS


@pytest.mark.parametrize("alert", _alerts(), ids=lambda alert: str(alert["alert"]))
def test_alert_tells_the_on_call_engineer_what_happened_and_where_the_runbook_is(
    alert: dict[str, Any],
) -> None:
    name = alert["alert"]
    assert alert["labels"]["severity"] in SEVERITIES
    annotations = alert["annotations"]
    assert annotations["summary"].strip()
    assert len(annotations["description"].split()) >= 15, "a description says what and why"
    assert annotations["runbook_url"] == f"{RUNBOOK_BASE}{name}.md"
    runbook = RUNBOOKS / f"{name}.md"
    assert runbook.is_file(), f"runbook {runbook.relative_to(ROOT)} is missing"
    text = runbook.read_text(encoding="utf-8")
    assert text.startswith(f"# {name}\n")
    for section in ("## Meaning", "## Impact", "## Diagnose", "## Fix"):
        assert section in text, f"{runbook.name} lacks {section}"
    assert f"[{name}]({name}.md)" in (RUNBOOKS / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("alert", _alerts(), ids=lambda alert: str(alert["alert"]))
def test_alert_selects_only_metrics_and_labels_the_operator_exports(
    alert: dict[str, Any],
) -> None:
    assert unknown_metric_uses(alert["expr"]) == []


def _render_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_prometheusrule", RENDER_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_prometheus_rule_resource_is_the_rule_file_rendered() -> None:
    rules_text = RULES_FILE.read_text(encoding="utf-8")
    committed = PROMETHEUS_RULE.read_text(encoding="utf-8")
    assert committed == _render_script().render(rules_text), (
        f"{PROMETHEUS_RULE.relative_to(ROOT)} is out of date: run "
        f"python3 {RENDER_SCRIPT.relative_to(ROOT)}"
    )
    resource = yaml.safe_load(committed)
    assert (resource["apiVersion"], resource["kind"]) == (
        "monitoring.coreos.com/v1",
        "PrometheusRule",
    )
    assert resource["spec"]["groups"] == yaml.safe_load(rules_text)["groups"]


def test_promtool_accepts_the_prometheus_rule_resource_groups(
    promtool: Path, tmp_path: Path
) -> None:
    resource = yaml.safe_load(PROMETHEUS_RULE.read_text(encoding="utf-8"))
    extracted = tmp_path / "from-prometheusrule.yml"
    extracted.write_text(yaml.safe_dump({"groups": resource["spec"]["groups"]}))
    checked = _promtool(promtool, "check", "rules", str(extracted))
    assert checked.returncode == 0, checked.stdout + checked.stderr
