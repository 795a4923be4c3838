"""`helm template` refuses values of the wrong type, unknown keys and malformed settings
through the chart's values.schema.json, and combinations the operator cannot run through the
templates, each with a message naming what is wrong; every value is documented in values.yaml
and in the chart's README; the schema's durations are the operator's."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from azure_jit_operator.domain.durations import KUBE_DURATION_PATTERN
from tests.support.helm import CHART, helm_or_skip, run_helm, template_args

# A cold build of helm (hack/helm/build.sh) takes a few minutes on 2 cores; `make test` has it
# built by `make lint` before pytest starts.
pytestmark = pytest.mark.timeout(900)

VALUES = CHART / "values.yaml"
SCHEMA = CHART / "values.schema.json"
README = CHART / "README.md"
# Maps whose keys are the user's (labels, annotations, quantities, Kubernetes objects): the
# map is documented, its keys are not the chart's.
FREE_MAPS = {
    "resources",
    "nodeSelector",
    "affinity",
    "podAnnotations",
    "podLabels",
    "commonLabels",
    "serviceAccount.annotations",
    "monitoring.serviceMonitor.labels",
    "monitoring.prometheusRule.labels",
    "monitoring.dashboard.labels",
}


@pytest.fixture(scope="module")
def helm() -> Path:
    return helm_or_skip()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"replicas": "two"}, "/replicas", id="replicas given as a string"),
        pytest.param({"replicas": 0}, "/replicas", id="no replicas at all"),
        pytest.param({"replica": 2}, "'replica' not allowed", id="a misspelt key"),
        pytest.param({"image": {"tag": 1.2}}, "/image/tag", id="a tag YAML reads as a number"),
        pytest.param({"image": {"digest": "sha256:abc"}}, "/image/digest", id="a truncated digest"),
        pytest.param({"image": {"registry": "x"}}, "'registry' not allowed", id="image.registry"),
        pytest.param({"webhooks": {"mode": "on"}}, "/webhooks/mode", id="an unknown webhook mode"),
        pytest.param({"webhooks": True}, "/webhooks", id="webhooks as a boolean"),
        pytest.param(
            {"namespaceCredentials": {"enabled": "yes"}},
            "/namespaceCredentials/enabled",
            id="a boolean given as a string",
        ),
        pytest.param(
            {"operator": {"closeGrace": "30"}},
            "/operator/closeGrace",
            id="a duration without a unit",
        ),
        pytest.param(
            {"operator": {"driftInterval": "1.5m"}},
            "/operator/driftInterval",
            id="a duration the operator cannot read",
        ),
        pytest.param(
            {"operator": {"logLevel": "TRACE"}}, "/operator/logLevel", id="an unknown log level"
        ),
        pytest.param(
            {"azure": {"armEndpoint": "http://management.azure.com"}},
            "/azure/armEndpoint",
            id="Azure Resource Manager over plain http",
        ),
        pytest.param({"azure": {"clientId": "my-identity"}}, "/azure/clientId", id="not a GUID"),
        pytest.param({"watchNamespace": "Team_Web"}, "/watchNamespace", id="not a namespace name"),
        pytest.param(
            {"commonLabels": {"app.kubernetes.io/name": "x"}},
            "app.kubernetes.io/name",
            id="a label the selectors rely on",
        ),
        pytest.param(
            {"monitoring": {"serviceMonitor": {"enabled": True, "interval": 30}}},
            "/monitoring/serviceMonitor/interval",
            id="an interval as a number",
        ),
        pytest.param(
            {"resources": {"limits": {"memory": "lots"}}},
            "/resources/limits/memory",
            id="a quantity that is none",
        ),
        pytest.param(
            {"webhooks": {"mode": "managed"}, "replicas": 2},
            "webhooks.mode=managed runs one replica",
            id="two replicas with managed webhooks",
        ),
        pytest.param(
            {"namespaceCredentials": {"required": True}},
            "namespaceCredentials.required needs namespaceCredentials.enabled",
            id="required namespace credentials without enabling them",
        ),
    ],
)
def test_helm_template_refuses_a_bad_value_and_says_which(
    helm: Path, values: dict[str, Any], message: str
) -> None:
    refused = run_helm(helm, *template_args(values=values), input=yaml.safe_dump(values))
    assert refused.returncode != 0, f"helm rendered {values}:\n{refused.stdout[:500]}"
    assert message in refused.stderr, refused.stderr
    assert refused.stdout == ""


def test_the_schema_is_draft_07_and_closed_at_every_level() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"

    def objects(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if "properties" in node:
            yield path, node
            for key, child in node["properties"].items():
                yield from objects(child, f"{path}.{key}".strip("."))

    for path, node in objects(schema, ""):
        if path != "global":
            assert node.get("additionalProperties") is False, f"{path or '<root>'} is open"


def test_the_schemas_durations_are_the_ones_the_operator_reads() -> None:
    schema = json.loads(SCHEMA.read_text())
    settings = schema["properties"]["operator"]["properties"]
    for key in ("closeGrace", "driftInterval", "terminalTtl"):
        assert settings[key]["pattern"] == KUBE_DURATION_PATTERN, key


def _leaves(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in FREE_MAPS:
            yield from _leaves(value, f"{path}.")
        else:
            yield path


def _key_lines(lines: list[str]) -> dict[str, int]:
    """Each key of values.yaml by its dotted path: the index of its line."""
    found: dict[str, int] = {}
    stack: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z_][A-Za-z0-9_.-]*):", line)
        if not match:
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
        found.setdefault(".".join(k for _, k in stack), index)
    return found


def test_every_value_is_commented_in_values_yaml_and_documented_in_the_readme() -> None:
    lines = VALUES.read_text().splitlines()
    values = yaml.safe_load("\n".join(lines))
    at = _key_lines(lines)
    readme = README.read_text()
    schema = json.loads(SCHEMA.read_text())
    leaves = list(_leaves(values))
    assert len(leaves) > 30
    for path in leaves:
        assert f"`{path}`" in readme, f"README.md does not document `{path}`"
        assert lines[at[path] - 1].lstrip().startswith("#"), f"values.yaml: `{path}` has no comment"
        node = schema
        for part in path.split("."):
            assert part in node["properties"], f"values.schema.json lacks `{path}`"
            node = node["properties"][part]
