"""Every request-vs-policy rule, with the exact sentence a user reads in status."""

from typing import Any

import pytest

from azure_jit_operator.domain.request_rules import check_request, policy_not_found
from azure_jit_operator.domain.specs import parse_policy_spec, parse_request_spec
from tests.support.manifests import policy_spec, port_rule, request_spec

POLICY = parse_policy_spec(
    policy_spec(
        {
            "vm-web-01": [
                port_rule(22, prefixes=["198.51.100.0/24", "203.0.113.0/24"], max_duration="3h"),
                port_rule(443, prefixes=["*"], max_duration="1h"),
            ],
            "vm-web-02": [port_rule(3389, prefixes=["192.0.2.0/24"], max_duration="30m")],
        }
    ),
    name="web-admins",
)


def judge(**kw: Any) -> tuple[str, str] | None:
    denial = check_request(parse_request_spec(request_spec(**kw)), POLICY, policy_name="web-admins")
    return None if denial is None else (denial.reason, denial.message)


@pytest.mark.parametrize(
    ("request_fields", "reason", "message"),
    [
        pytest.param(
            {"vm": "vm-db-01"},
            "VirtualMachineNotInPolicy",
            "virtual machine 'vm-db-01' is not governed by JitPolicy 'web-admins'; "
            "it governs: vm-web-01, vm-web-02",
            id="a VM the policy does not list is denied, naming the VMs it does list",
        ),
        pytest.param(
            {"ports": [(3389, "198.51.100.7")]},
            "PortNotInPolicy",
            "port 3389 is not JIT-enabled on vm-web-01 by JitPolicy 'web-admins'; "
            "allowed ports: 22, 443",
            id="a port the VM does not protect is denied, naming the allowed ports",
        ),
        pytest.param(
            {"ports": [(22, "192.0.2.10")]},
            "SourcePrefixNotAllowed",
            "source 192.0.2.10/32 is not inside the prefixes allowed for port 22 on vm-web-01: "
            "198.51.100.0/24, 203.0.113.0/24",
            id="a source outside every allowed prefix is denied",
        ),
        pytest.param(
            {"ports": [(22, "198.51.100.0/23")]},
            "SourcePrefixNotAllowed",
            "source 198.51.100.0/23 is not inside the prefixes allowed for port 22 on vm-web-01: "
            "198.51.100.0/24, 203.0.113.0/24",
            id="a range wider than the allowed prefix is denied even though it overlaps",
        ),
        pytest.param(
            {"ports": [(22, "*")]},
            "SourcePrefixNotAllowed",
            "source * is not inside the prefixes allowed for port 22 on vm-web-01: "
            "198.51.100.0/24, 203.0.113.0/24",
            id="any-source is denied where the policy lists specific prefixes",
        ),
        pytest.param(
            {"vm": "vm-web-02", "ports": [(3389, "198.51.100.7")], "duration": "10m"},
            "SourcePrefixNotAllowed",
            "source 198.51.100.7/32 is not inside the prefixes allowed for port 3389 on vm-web-02: "
            "192.0.2.0/24",
            id="another VM's allowed prefixes do not apply to this one",
        ),
        pytest.param(
            {"duration": "4h"},
            "DurationExceedsMaximum",
            "duration 4h exceeds the maximum 3h allowed for port 22 on vm-web-01",
            id="a duration over the port's maximum is denied",
        ),
        pytest.param(
            {"ports": [(22, "198.51.100.7"), (443, "192.0.2.1")], "duration": "2h"},
            "DurationExceedsMaximum",
            "duration 2h exceeds the maximum 1h allowed for port 443 on vm-web-01",
            id="the strictest port of a multi-port request bounds its duration",
        ),
    ],
)
def test_denied_requests_say_exactly_why(
    request_fields: dict[str, Any], reason: str, message: str
) -> None:
    assert judge(**request_fields) == (reason, message)


@pytest.mark.parametrize(
    "request_fields",
    [
        pytest.param({}, id="a host inside an allowed range for the default hour"),
        pytest.param(
            {"ports": [(22, "203.0.113.0/28")]}, id="a small range inside the second allowed prefix"
        ),
        pytest.param(
            {"ports": [(443, "*")], "duration": "1h"}, id="any source where the policy allows any"
        ),
        pytest.param({"vm": "VM-WEB-01"}, id="VM names match case-insensitively like Azure's"),
        pytest.param({"duration": "3h"}, id="exactly the maximum duration"),
        pytest.param(
            {"vm": "vm-web-02", "ports": [(3389, "192.0.2.7")], "duration": "30m"},
            id="a host inside the second VM's own range",
        ),
    ],
)
def test_requests_within_the_policy_are_allowed(request_fields: dict[str, Any]) -> None:
    assert judge(**request_fields) is None


def test_a_missing_policy_is_named_with_how_to_fix_it() -> None:
    denial = policy_not_found("web-admin", "team-web")
    assert denial.reason == "PolicyNotFound"
    assert denial.message == (
        "JitPolicy 'web-admin' does not exist in namespace 'team-web'; set spec.policyName "
        "to a JitPolicy of this namespace (kubectl get jitpolicies)"
    )
