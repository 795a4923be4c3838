"""Schema-level check of examples/ and of CRD/domain agreement (the real API server check,
with CEL, is in tests/integration)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from azure_jit_operator.domain.durations import KUBE_DURATION_PATTERN
from azure_jit_operator.domain.prefixes import IPV6_UNSUPPORTED
from azure_jit_operator.domain.request_rules import check_request
from azure_jit_operator.domain.schedules import parse_schedule_spec
from azure_jit_operator.domain.specs import parse_policy_spec, parse_request_spec
from tests.support.repo import crd, crd_schema, example_files, load_yaml

PLURALS = {
    "JitPolicy": "jitpolicies",
    "JitAccessRequest": "jitaccessrequests",
    "JitAccessSchedule": "jitaccessschedules",
}


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_every_example_validates_against_its_crd_schema(path: Path) -> None:
    document = load_yaml(path)
    jsonschema.validate(document, crd_schema(PLURALS[document["kind"]]))


def test_the_valid_example_request_is_allowed_and_the_other_denied_by_the_policy() -> None:
    docs = [load_yaml(p) for p in example_files()]
    policy_doc = next(d for d in docs if d["metadata"]["name"] == "web-admins")
    policy = parse_policy_spec(policy_doc["spec"], name=policy_doc["metadata"]["name"])
    verdicts = {
        d["metadata"]["name"]: check_request(
            parse_request_spec(d["spec"]), policy, policy_name=policy_doc["metadata"]["name"]
        )
        for d in docs
        if d["kind"] == "JitAccessRequest"
    }
    assert verdicts["ssh-inc-4711"] is None
    denied = verdicts["ssh-from-cafe"]
    assert denied is not None
    assert denied.reason == "SourcePrefixNotAllowed"


def test_the_example_schedule_opens_what_the_example_policy_allows() -> None:
    docs = [load_yaml(p) for p in example_files()]
    policy_doc = next(d for d in docs if d["metadata"]["name"] == "web-admins")
    policy = parse_policy_spec(policy_doc["spec"], name="web-admins")
    schedules = [d for d in docs if d["kind"] == "JitAccessSchedule"]
    assert schedules
    for doc in schedules:
        schedule = parse_schedule_spec(doc["spec"])
        assert check_request(schedule.request, policy, policy_name="web-admins") is None


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.mark.parametrize("plural", sorted(PLURALS.values()))
def test_crd_duration_patterns_are_the_ones_the_operator_parses(plural: str) -> None:
    patterns = [
        n["pattern"] for n in _walk(crd_schema(plural)) if "pattern" in n and "h)?" in n["pattern"]
    ]
    assert patterns
    assert set(patterns) == {KUBE_DURATION_PATTERN}


@pytest.mark.parametrize("plural", sorted(PLURALS.values()))
def test_every_schema_field_has_a_description_for_kubectl_explain(plural: str) -> None:
    def undocumented(node: dict[str, Any], path: str) -> Iterator[str]:
        for name, child in node.get("properties", {}).items():
            if name != "metadata" and not child.get("description"):
                yield f"{path}.{name}"
            yield from undocumented(child, f"{path}.{name}")
        if "items" in node:
            yield from undocumented(node["items"], f"{path}[]")

    assert list(undocumented(crd_schema(plural), plural)) == []


@pytest.mark.parametrize("plural", sorted(PLURALS.values()))
def test_every_cel_rule_carries_a_message(plural: str) -> None:
    rules = [r for n in _walk(crd_schema(plural)) for r in n.get("x-kubernetes-validations", [])]
    assert rules
    assert all(r.get("message") for r in rules)


def test_both_kinds_are_in_the_jit_category_with_short_names() -> None:
    names = {plural: crd(plural)["spec"]["names"] for plural in PLURALS.values()}
    assert names["jitpolicies"]["shortNames"] == ["jitpol"]
    assert names["jitaccessrequests"]["shortNames"] == ["jitreq"]
    assert names["jitaccessschedules"]["shortNames"] == ["jitsched"]
    assert all(n["categories"] == ["jit"] for n in names.values())


@pytest.mark.parametrize("plural", sorted(PLURALS.values()))
def test_crd_and_operator_refuse_ipv6_sources_in_the_same_words(plural: str) -> None:
    rules = [r for n in _walk(crd_schema(plural)) for r in n.get("x-kubernetes-validations", [])]
    ipv6_rules = [r for r in rules if r["rule"] == "!self.contains(':')"]
    assert ipv6_rules  # one per source-prefix field
    assert {r["message"] for r in ipv6_rules} == {IPV6_UNSUPPORTED}
