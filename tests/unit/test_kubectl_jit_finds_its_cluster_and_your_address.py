"""Where ``kubectl jit`` connects (kubeconfig, context, namespace, as kubectl decides) and
where ``--my-ip`` gets the caller's address (only from what the caller configured)."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from azure_jit_operator.kubectl_jit import main
from azure_jit_operator.kubectl_jit.arguments import Connection
from azure_jit_operator.kubectl_jit.client import CliError, resolve
from azure_jit_operator.kubectl_jit.myip import DetectionError, detect_public_ip, fetch_text


def write_kubeconfig(
    path: Path, *, current: str = "dev", server: str = "https://127.0.0.1:1"
) -> Path:
    def context(name: str, namespace: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"cluster": "c", "user": "u"}
        if namespace:
            body["namespace"] = namespace
        return {"name": name, "context": body}

    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [context("dev", "team-web"), context("prod", None)],
                "current-context": current,
            }
        )
    )
    return path


def test_the_namespace_comes_from_the_flag_else_the_context_else_default(tmp_path: Path) -> None:
    path = str(write_kubeconfig(tmp_path / "config"))
    chosen, configuration = resolve(Connection(kubeconfig=path), env={})
    assert (chosen.context, chosen.namespace, chosen.server) == (
        "dev",
        "team-web",
        "https://127.0.0.1:1",
    )
    assert configuration.host == "https://127.0.0.1:1"
    assert resolve(Connection(kubeconfig=path, namespace="ops"), env={})[0].namespace == "ops"
    assert resolve(Connection(kubeconfig=path, context="prod"), env={})[0].namespace == "default"


def test_kubeconfig_from_the_environment_may_list_several_files(tmp_path: Path) -> None:
    first = write_kubeconfig(tmp_path / "a", current="prod")
    second = tmp_path / "b"
    second.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "contexts": []}))
    chosen, _ = resolve(Connection(), env={"KUBECONFIG": f"{first}:{second}"})
    assert (chosen.context, chosen.namespace) == ("prod", "default")


def test_an_unknown_context_or_a_missing_kubeconfig_is_a_usage_error(tmp_path: Path) -> None:
    path = str(write_kubeconfig(tmp_path / "config"))
    with pytest.raises(CliError) as unknown:
        resolve(Connection(kubeconfig=path, context="staging"), env={})
    assert unknown.value.code == 2
    assert "context 'staging' is not in kubeconfig" in unknown.value.message
    assert "(contexts: dev, prod)" in unknown.value.message
    with pytest.raises(CliError) as missing:
        resolve(Connection(), env={"KUBECONFIG": str(tmp_path / "nothing-here")})
    assert missing.value.code == 2
    assert f"cannot use kubeconfig {tmp_path / 'nothing-here'}" in missing.value.message


def test_main_exits_2_without_a_kubeconfig_and_1_when_the_cluster_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nothing-here"))
    assert main(["list"]) == 2
    assert capsys.readouterr().err.startswith("error: cannot use kubeconfig")

    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "config")))
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the API server at https://127.0.0.1:1" in err
    assert "context 'dev' is the one you want" in err


def test_my_ip_is_taken_from_the_environment_as_a_host_prefix() -> None:
    assert detect_public_ip({"KUBECTL_JIT_MY_IP": " 198.51.100.7 "}) == "198.51.100.7/32"
    assert detect_public_ip({"KUBECTL_JIT_MY_IP": "2001:db8::7"}) == "2001:db8::7/128"


def test_my_ip_asks_only_the_echo_service_the_caller_named() -> None:
    asked: list[str] = []

    def fetch(url: str) -> str:
        asked.append(url)
        return "203.0.113.5\n"

    env = {"KUBECTL_JIT_MY_IP_URL": "https://ip.example.com/"}
    assert detect_public_ip(env, fetch=fetch) == "203.0.113.5/32"
    assert asked == ["https://ip.example.com/"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "--my-ip cannot tell your public IP address by itself: pass --from"),
        ({"KUBECTL_JIT_MY_IP": "my-laptop"}, "gave 'my-laptop', which is not an IP address"),
        ({"KUBECTL_JIT_MY_IP_URL": "https://ip.example.com/"}, "gave '<html>"),
    ],
    ids=["nothing configured", "a name instead of an address", "a service answering HTML"],
)
def test_my_ip_fails_with_what_to_do_instead(env: dict[str, str], message: str) -> None:
    with pytest.raises(DetectionError, match="pass --from") as failed:
        detect_public_ip(env, fetch=lambda url: "<html>hello</html>")
    assert message in str(failed.value)


def test_my_ip_reports_an_unreachable_service_and_refuses_plain_http() -> None:
    def unreachable(url: str) -> str:
        raise OSError("connection refused")

    with pytest.raises(DetectionError, match="connection refused\\); pass --from instead"):
        detect_public_ip({"KUBECTL_JIT_MY_IP_URL": "https://ip.example.com/"}, fetch=unreachable)
    with pytest.raises(DetectionError, match="must be an https:// URL"):
        fetch_text("http://ip.example.com/")


def test_my_ip_failing_is_a_usage_error_before_any_cluster_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KUBECTL_JIT_MY_IP", raising=False)
    monkeypatch.delenv("KUBECTL_JIT_MY_IP_URL", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nothing-here"))
    argv = ["request", "--policy", "p", "--vm", "vm", "--port", "22", "--for", "1h"]
    assert main([*argv, "--reason", "r", "--my-ip"]) == 2
    assert "--my-ip cannot tell your public IP address" in capsys.readouterr().err
