"""The message approvers get (Slack / Teams compatible) and where a JitPolicy says to send it."""

from __future__ import annotations

import pytest

from azure_jit_operator.domain.notify import (
    NOTIFY_SECRET_NAME,
    NotifySpecError,
    NotifyTarget,
    WaitingRequest,
    approval_message,
    parse_notify,
    webhook_url_problem,
)
from azure_jit_operator.domain.specs import SpecError, parse_policy_spec

WAITING = WaitingRequest(
    namespace="team-web",
    name="ssh-inc-4711",
    policy="web-admins",
    requester="alice",
    virtual_machine="vm-web-01",
    ports=[(22, "198.51.100.7/32"), (3389, "198.51.100.7/32")],
    duration="1h",
    justification="INC-4711 <!channel> see <https://evil.example|the runbook> & more",
    required_approvals=2,
)


def test_the_message_says_who_wants_what_for_how_long_why_and_how_to_approve() -> None:
    text = approval_message(WAITING)["text"]
    for fragment in (
        "team-web/ssh-inc-4711",
        "2 approvals needed",
        "*Requester:* alice",
        "*VM:* vm-web-01",
        "*Ports:* 22 from 198.51.100.7/32, 3389 from 198.51.100.7/32",
        "*Duration:* 1h",
        "*Policy:* web-admins",
        "INC-4711",
        "`kubectl jit approve ssh-inc-4711 -n team-web`",
    ):
        assert fragment in text


def test_user_text_cannot_ping_the_channel_or_forge_a_link() -> None:
    message = approval_message(WAITING)
    blocks_text = " ".join(str(b) for b in message["blocks"])
    for body in (message["text"], blocks_text):
        assert "<!channel>" not in body
        assert "<https://evil.example" not in body
    assert "&lt;!channel&gt;" in message["text"]


def test_slack_gets_blocks_within_its_limits_and_teams_the_same_text() -> None:
    message = approval_message(
        WaitingRequest(
            namespace="team-web",
            name="ssh",
            policy="web-admins",
            requester="alice",
            virtual_machine="vm-web-01",
            ports=[(22, "*")],
            duration="1h",
            justification="x" * 5000,
            required_approvals=1,
        )
    )
    header, details, command = message["blocks"]
    assert header["type"] == "header"
    assert len(header["text"]["text"]) <= 150
    assert details["text"]["type"] == "mrkdwn"
    assert len(details["text"]["text"]) <= 3000
    assert "kubectl jit approve ssh -n team-web" in command["text"]["text"]
    assert "(1 approval needed)" in message["text"]


def test_a_policy_names_a_key_of_the_one_secret_the_operator_may_read() -> None:
    spec = {
        "azure": {
            "subscriptionId": "00000000-0000-0000-0000-000000000000",
            "resourceGroup": "rg-web",
            "location": "westeurope",
        },
        "virtualMachines": [
            {
                "name": "vm-web-01",
                "ports": [
                    {
                        "number": 22,
                        "maxRequestAccessDuration": "3h",
                        "allowedSourceAddressPrefixes": ["198.51.100.0/24"],
                    }
                ],
            }
        ],
        "approval": {
            "mode": "Manual",
            "notify": {"webhook": {"secretKeyRef": {"name": NOTIFY_SECRET_NAME, "key": "slack"}}},
        },
    }
    parsed = parse_policy_spec(spec, name="web-admins")
    assert parsed.approval.notify == NotifyTarget(NOTIFY_SECRET_NAME, "slack")
    spec["approval"]["notify"]["webhook"]["secretKeyRef"]["name"] = "my-secret"  # type: ignore[index]
    with pytest.raises(SpecError, match="must be 'azure-jit-notify'"):
        parse_policy_spec(spec, name="web-admins")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("nope", id="not an object"),
        pytest.param({"webhook": {}}, id="no secretKeyRef"),
        pytest.param({"webhook": {"secretKeyRef": {"name": NOTIFY_SECRET_NAME}}}, id="no key"),
    ],
)
def test_a_malformed_notify_says_what_is_missing(raw: object) -> None:
    with pytest.raises(NotifySpecError):
        parse_notify(raw)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("https://hooks.slack.com/services/T/B/X", None, id="an https URL is fine"),
        pytest.param("  https://example.test/hook\n", None, id="surrounding whitespace is fine"),
        pytest.param("", "empty", id="an empty key"),
        pytest.param("hooks.slack.com/services/T/B/X", "http(s) URL", id="no scheme"),
        pytest.param("https://a.test/x https://b.test/y", "spaces", id="two URLs"),
    ],
)
def test_the_secret_value_must_be_one_webhook_url_and_the_problem_never_repeats_it(
    value: str, problem: str | None
) -> None:
    found = webhook_url_problem(value)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
        assert value.strip() == "" or value.strip() not in found
