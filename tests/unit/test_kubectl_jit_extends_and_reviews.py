"""``kubectl jit extend`` and ``review`` and ``request --emergency``: what they parse, the
follow-on request they build, what they refuse before asking the cluster, and the JSON patch
that appends a review without overwriting another."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from azure_jit_operator.kubectl_jit.arguments import RequestOptions, parse_args
from azure_jit_operator.kubectl_jit.chain_arguments import ExtendOptions, ReviewOptions
from azure_jit_operator.kubectl_jit.chain_commands import (
    append_review_operations,
    extension_manifest,
    refuse_unless_extendable,
    refuse_unless_reviewable,
)
from azure_jit_operator.kubectl_jit.chain_output import chain_lines
from azure_jit_operator.kubectl_jit.client import CliError
from azure_jit_operator.kubectl_jit.commands import request_manifest

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ACTIVE: dict[str, Any] = {
    "metadata": {"name": "ssh", "resourceVersion": "7"},
    "spec": {
        "policyName": "web-admins",
        "virtualMachine": "vm-web-01",
        "ports": [{"number": 22, "sourceAddressPrefix": "198.51.100.7/32"}],
        "duration": "1h",
        "justification": "INC-4711 debugging",
        "requester": {"username": "alice"},
    },
    "status": {"phase": "Active", "expiresAt": "2026-11-23T11:00:00Z"},
}


def test_extend_parses_its_name_duration_and_wait() -> None:
    parsed = parse_args(["extend", "ssh", "--for", "30m", "--wait", "-n", "team-web"])
    assert parsed.options == ExtendOptions(
        name="ssh",
        duration=timedelta(minutes=30),
        reason="",
        new_name=None,
        wait=True,
        timeout=timedelta(minutes=5),
    )
    assert parsed.connection.namespace == "team-web"


def test_extend_refuses_a_duration_outside_the_crds_range(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["extend", "ssh", "--for", "25h"])
    assert exited.value.code == 2
    assert "--for" in capsys.readouterr().err


def test_review_parses_an_optional_comment() -> None:
    assert parse_args(["review", "glass"]).options == ReviewOptions(name="glass", comment="")
    assert parse_args(["review", "glass", "--comment", "justified"]).options == ReviewOptions(
        name="glass", comment="justified"
    )


def test_request_emergency_marks_the_manifest() -> None:
    parsed = parse_args(
        [
            "request",
            "--emergency",
            "--policy",
            "web-admins",
            "--vm",
            "vm-web-01",
            "--port",
            "22",
            "--for",
            "30m",
            "--reason",
            "INC-4712 database down",
            "--from",
            "198.51.100.7",
        ]
    )
    assert isinstance(parsed.options, RequestOptions)
    assert parsed.options.emergency is True
    body = request_manifest(parsed.options, source="198.51.100.7")
    assert body["spec"]["emergency"] is True


def test_the_extension_copies_policy_vm_ports_and_sources_and_names_its_predecessor() -> None:
    options = ExtendOptions("ssh", timedelta(minutes=30), "", None, False, timedelta(minutes=5))
    body = extension_manifest(ACTIVE, options)
    assert body["metadata"] == {"generateName": "ssh-ext-"}
    assert body["spec"] == {
        "policyName": "web-admins",
        "virtualMachine": "vm-web-01",
        "ports": [{"number": 22, "sourceAddressPrefix": "198.51.100.7/32"}],
        "duration": "30m",
        "justification": "INC-4711 debugging",
        "extends": "ssh",
    }


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ({"phase": "Expired"}, "only an Active request can be extended; create a new request"),
        ({"phase": "Pending"}, "wait until it is open"),
        ({"phase": "Active", "extendedBy": "ssh-ext-x"}, "kubectl jit extend ssh-ext-x"),
    ],
    ids=["a finished request", "a pending request", "an already extended request"],
)
def test_extend_refuses_what_the_operator_would_deny(status: dict[str, str], words: str) -> None:
    with pytest.raises(CliError, match=words):
        refuse_unless_extendable({**ACTIVE, "status": status}, name="ssh")


def test_an_extension_that_was_revoked_no_longer_blocks_another() -> None:
    extended = {**ACTIVE, "status": {"phase": "Active", "extendedBy": "ssh-ext-x"}}
    refuse_unless_extendable(extended, name="ssh", successor_gone=True)


def test_only_emergency_requests_are_reviewed() -> None:
    with pytest.raises(CliError, match="is no emergency request"):
        refuse_unless_reviewable(ACTIVE, name="ssh")
    emergency = {**ACTIVE, "spec": {**ACTIVE["spec"], "emergency": True}}
    refuse_unless_reviewable(emergency, name="ssh")


def test_a_review_is_appended_after_testing_what_was_read() -> None:
    entry = {"user": "bob", "time": "2026-11-23T10:00:00Z"}
    first = append_review_operations(ACTIVE, entry)
    assert first == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "add", "path": "/status/reviews", "value": [entry]},
    ]
    reviewed = {**ACTIVE, "status": {"reviews": [entry]}}
    second = append_review_operations(reviewed, {"user": "carol", "time": entry["time"]})
    assert second[0] == {"op": "test", "path": "/status/reviews", "value": [entry]}
    assert second[1]["path"] == "/status/reviews/-"


def test_status_shows_the_chain_and_the_reviews() -> None:
    body = {
        "spec": {"extends": "ssh", "emergency": False},
        "status": {"chainStartTime": "2026-11-23T10:00:00Z", "extendedBy": "ssh-ext-2"},
    }
    assert chain_lines(body) == [
        "Extends:    ssh (chain since 2026-11-23T10:00:00Z)",
        "Extension:  ssh-ext-2",
    ]
    glass = {"spec": {"emergency": True}, "status": {}}
    assert chain_lines(glass) == ["Emergency:  yes (break-glass); reviewed: not yet"]
