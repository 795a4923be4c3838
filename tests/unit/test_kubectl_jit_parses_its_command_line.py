"""``kubectl jit`` parses what people type: values checked with the CRD's rules before any
API call, connection flags before or after the command, usage mistakes exit with 2."""

from datetime import timedelta

import pytest

from azure_jit_operator.kubectl_jit.arguments import (
    Connection,
    DecisionOptions,
    ListOptions,
    RequestOptions,
    RevokeOptions,
    StatusOptions,
    parse_args,
)
from azure_jit_operator.kubectl_jit.commands import generated_prefix, request_manifest

REQUEST = ["request", "--policy", "web-admins", "--vm", "vm-web-01", "--port", "22"]
REQUEST += ["--for", "1h", "--reason", "INC-4711"]


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_a_request_with_every_option_becomes_typed_options() -> None:
    parsed = parse_args(
        [
            *REQUEST,
            "--port",
            "443",
            "--port",
            "22",
            "--from",
            "198.51.100.7/32",
            "--name",
            "ssh-inc-4711",
            "--wait",
            "--timeout",
            "90s",
        ]
    )
    assert parsed.options == RequestOptions(
        policy="web-admins",
        vm="vm-web-01",
        ports=(22, 443),
        duration=timedelta(hours=1),
        reason="INC-4711",
        source="198.51.100.7/32",
        name="ssh-inc-4711",
        wait=True,
        timeout=timedelta(seconds=90),
    )
    assert parsed.connection == Connection()


def test_my_ip_leaves_the_source_to_be_detected_and_wait_defaults_to_five_minutes() -> None:
    options = parse_args([*REQUEST, "--my-ip"]).options
    assert isinstance(options, RequestOptions)
    assert options.source is None
    assert options.timeout == timedelta(minutes=5)
    assert not options.wait


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-n", "team-web", "list"], Connection(namespace="team-web")),
        (["list", "-n", "team-web"], Connection(namespace="team-web")),
        (
            ["--kubeconfig", "/k", "--context", "prod", "list", "--namespace", "ops"],
            Connection(kubeconfig="/k", context="prod", namespace="ops"),
        ),
        (["--context", "prod", "list"], Connection(context="prod")),
    ],
    ids=[
        "the namespace before the command",
        "the namespace after the command",
        "kubeconfig and context before, namespace after",
        "a flag before the command is not reset by the command",
    ],
)
def test_connection_flags_work_before_and_after_the_command(
    argv: list[str], expected: Connection
) -> None:
    assert parse_args(argv).connection == expected


def test_each_command_yields_its_options() -> None:
    assert parse_args(["approve", "ssh"]).options == DecisionOptions("ssh", "Approved", "")
    assert parse_args(["approve", "ssh", "--reason", "ok"]).options == DecisionOptions(
        "ssh", "Approved", "ok"
    )
    assert parse_args(["deny", "ssh", "--reason", "freeze"]).options == DecisionOptions(
        "ssh", "Denied", "freeze"
    )
    assert parse_args(["revoke", "ssh", "--wait"]).options == RevokeOptions(
        "ssh", wait=True, timeout=timedelta(minutes=5)
    )
    assert parse_args(["list", "-A"]).options == ListOptions(all_namespaces=True)
    assert parse_args(["status", "ssh"]).options == StatusOptions("ssh", events=10)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*REQUEST[:-4], "--for", "2d", "--reason", "x", "--from", "1.2.3.4"], "such as 90m"),
        ([*REQUEST[:-4], "--for", "25h", "--reason", "x", "--from", "1.2.3.4"], "use 1m to 24h"),
        ([*REQUEST[:-4], "--for", "30s", "--reason", "x", "--from", "1.2.3.4"], "use 1m to 24h"),
        ([*REQUEST, "--from", "198.51.100.7/24"], "CIDR range such as 198.51.100.0/24"),
        ([*REQUEST, "--from", "my-laptop"], "invalid source address prefix 'my-laptop'"),
        ([*REQUEST, "--from", "1.2.3.4", "--my-ip"], "not allowed with argument"),
        (REQUEST, "one of the arguments --from --my-ip is required"),
        ([*REQUEST, "--port", "70000", "--from", "1.2.3.4"], "invalid port '70000'"),
        ([*REQUEST, "--from", "1.2.3.4", "--name", "SSH_now"], "invalid name 'SSH_now'"),
        ([*REQUEST, "--from", "1.2.3.4", "--timeout", "1m"], "--timeout only applies with --wait"),
        ([*REQUEST[:-2], "--reason", " ", "--from", "1.2.3.4"], "the reason must not be empty"),
        ([*REQUEST[:-2], "--reason", "x" * 501, "--from", "1.2.3.4"], "at most 500 characters"),
        (["deny", "ssh"], "the following arguments are required: --reason"),
        (["approve"], "the following arguments are required: NAME"),
        (["status", "ssh", "--events", "-1"], "--events must be 0 or more"),
        ([], "the following arguments are required: COMMAND"),
        (["open", "ssh"], "invalid choice: 'open'"),
    ],
    ids=[
        "a duration in days",
        "a duration over the CRD's 24h",
        "a duration under the CRD's 1m",
        "a prefix with host bits",
        "a prefix that is a host name",
        "both --from and --my-ip",
        "neither --from nor --my-ip",
        "a port out of range",
        "a name Kubernetes would refuse",
        "a timeout without --wait",
        "a blank reason",
        "a reason longer than the CRD allows",
        "a denial without a reason",
        "approve without a name",
        "a negative number of events",
        "no command",
        "an unknown command",
    ],
)
def test_usage_mistakes_exit_with_2_and_say_what_is_accepted(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in usage_error(argv, capsys)


def test_a_request_without_a_name_gets_a_readable_generated_one() -> None:
    options = parse_args([*REQUEST, "--port", "443", "--from", "198.51.100.7"]).options
    assert isinstance(options, RequestOptions)
    manifest = request_manifest(options, source="198.51.100.7")
    assert manifest == {
        "apiVersion": "azurejit.dev/v1alpha1",
        "kind": "JitAccessRequest",
        "metadata": {"generateName": "vm-web-01-22-"},
        "spec": {
            "policyName": "web-admins",
            "virtualMachine": "vm-web-01",
            "ports": [
                {"number": 22, "sourceAddressPrefix": "198.51.100.7"},
                {"number": 443, "sourceAddressPrefix": "198.51.100.7"},
            ],
            "duration": "1h",
            "justification": "INC-4711",
        },
    }
    assert "requester" not in manifest["spec"]  # stamped by the cluster, never sent


@pytest.mark.parametrize(
    ("vm", "prefix"),
    [
        ("vm-web-01", "vm-web-01-22-"),
        ("VM_Web.01", "vm-web-01-22-"),
        ("_", "request-22-"),
        ("a" * 64, "a" * 40 + "-22-"),
    ],
    ids=["already a name", "upper case, dots, underscores", "nothing usable", "a long VM name"],
)
def test_generated_names_are_valid_kubernetes_names(vm: str, prefix: str) -> None:
    assert generated_prefix(vm, (22,)) == prefix


def test_a_named_request_keeps_its_name_and_the_duration_is_written_as_in_manifests() -> None:
    argv = [*REQUEST[:-4], "--for", "90m", "--reason", "x", "--from", "*", "--name", "ssh"]
    options = parse_args(argv).options
    assert isinstance(options, RequestOptions)
    manifest = request_manifest(options, source="*")
    assert manifest["metadata"] == {"name": "ssh"}
    assert manifest["spec"]["duration"] == "1h30m"
