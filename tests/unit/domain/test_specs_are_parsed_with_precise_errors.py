"""The operator's own spec checks (a CRD may be older than the operator): each bad spec
names its field and what to do."""

from datetime import timedelta
from typing import Any

import pytest

from azure_jit_operator.domain.specs import (
    DeletionPolicy,
    Protocol,
    SpecError,
    parse_policy_spec,
    parse_request_spec,
)
from tests.support.manifests import policy_spec, port_rule, request_spec


def test_a_valid_policy_parses_into_typed_rules() -> None:
    spec = parse_policy_spec(
        policy_spec({"vm-web-01": [port_rule(22, max_duration="90m", protocol="*")]}),
        name="web-admins",
    )
    assert spec.azure.policy_name == "web-admins"
    assert spec.deletion_policy is DeletionPolicy.DELETE
    port = spec.virtual_machines[0].ports[0]
    assert (port.number, port.protocol, port.max_request_access_duration) == (
        22,
        Protocol.ANY,
        timedelta(minutes=90),
    )


def test_policy_name_defaults_to_the_object_name_unless_given() -> None:
    assert (
        parse_policy_spec(policy_spec(policy_name="legacy"), name="x").azure.policy_name == "legacy"
    )


def _broken_policy(mutate: Any) -> dict[str, Any]:
    spec = policy_spec({"vm-web-01": [port_rule(22)], "vm-web-02": [port_rule(22)]})
    mutate(spec)
    return spec


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        pytest.param(
            lambda s: s.pop("azure"), "spec.azure", "is required", id="missing azure block"
        ),
        pytest.param(
            lambda s: s["azure"].pop("resourceGroup"),
            "spec.azure.resourceGroup",
            "non-empty string",
            id="missing resource group",
        ),
        pytest.param(
            lambda s: s.update(virtualMachines=[]),
            "spec.virtualMachines",
            "non-empty list",
            id="no virtual machines",
        ),
        pytest.param(
            lambda s: s["virtualMachines"][1].update(name="VM-WEB-01"),
            "spec.virtualMachines",
            "virtual machine names must be unique",
            id="the same VM twice, differing only in case",
        ),
        pytest.param(
            lambda s: s["virtualMachines"][0]["ports"].append(port_rule(22)),
            "spec.virtualMachines[0].ports",
            "port numbers must be unique; 22 appears more than once",
            id="the same port twice on one VM",
        ),
        pytest.param(
            lambda s: s["virtualMachines"][0]["ports"][0].update(number=70000),
            "spec.virtualMachines[0].ports[0].number",
            "between 1 and 65535",
            id="port out of range",
        ),
        pytest.param(
            lambda s: s["virtualMachines"][0]["ports"][0].update(protocol="ICMP"),
            "spec.virtualMachines[0].ports[0].protocol",
            "TCP, UDP or *",
            id="unknown protocol",
        ),
        pytest.param(
            lambda s: s["virtualMachines"][0]["ports"][0].update(
                allowedSourceAddressPrefixes=["*", "10.0.0.0/8"]
            ),
            "spec.virtualMachines[0].ports[0].allowedSourceAddressPrefixes",
            "list it alone",
            id="any-source mixed with specific prefixes",
        ),
        pytest.param(
            lambda s: s["virtualMachines"][0]["ports"][0].update(
                allowedSourceAddressPrefixes=["10.0.0.1/8"]
            ),
            "spec.virtualMachines[0].ports[0].allowedSourceAddressPrefixes[0]",
            "host bits set",
            id="a CIDR with host bits set",
        ),
        pytest.param(
            lambda s: s["virtualMachines"][0]["ports"][0].update(maxRequestAccessDuration="25h"),
            "spec.virtualMachines[0].ports[0].maxRequestAccessDuration",
            "between 5m and 24h",
            id="a maximum beyond Azure's one day",
        ),
        pytest.param(
            lambda s: s["virtualMachines"][0]["ports"][0].update(maxRequestAccessDuration="1m"),
            "spec.virtualMachines[0].ports[0].maxRequestAccessDuration",
            "between 5m and 24h",
            id="a maximum below Azure's five minutes",
        ),
        pytest.param(
            lambda s: s["virtualMachines"][0]["ports"][0].update(
                maxRequestAccessDuration="two hours"
            ),
            "spec.virtualMachines[0].ports[0].maxRequestAccessDuration",
            "such as 90m",
            id="an unparsable maximum",
        ),
        pytest.param(
            lambda s: s.update(deletionPolicy="Keep"),
            "spec.deletionPolicy",
            "Delete or Orphan",
            id="unknown deletion policy",
        ),
    ],
)
def test_bad_policies_name_the_field_and_the_fix(mutate: Any, field: str, fragment: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_policy_spec(_broken_policy(mutate), name="web-admins")
    assert caught.value.field == field
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        pytest.param({"duration": "0s"}, "spec.duration", "between 1m and 24h", id="zero duration"),
        pytest.param({"duration": "25h"}, "spec.duration", "between 1m and 24h", id="over a day"),
        pytest.param({"duration": "soon"}, "spec.duration", "such as 90m", id="garbage duration"),
        pytest.param({"ports": []}, "spec.ports", "non-empty list", id="no ports"),
        pytest.param(
            {"ports": [(22, "198.51.100.7"), (22, "198.51.100.8")]},
            "spec.ports",
            "22 appears more than once",
            id="the same port twice",
        ),
        pytest.param(
            {"ports": [(22, "198.51.100.300")]},
            "spec.ports[0].sourceAddressPrefix",
            "invalid source address prefix",
            id="a malformed source address",
        ),
        pytest.param({"policy": ""}, "spec.policyName", "non-empty string", id="empty policy name"),
    ],
)
def test_bad_requests_name_the_field_and_the_fix(
    fields: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_request_spec(request_spec(**fields))
    assert caught.value.field == field
    assert fragment in caught.value.message
