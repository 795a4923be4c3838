"""The operator's own spec checks (a CRD may be older than the operator): each bad spec
names its field and what to do."""

from datetime import timedelta
from typing import Any

import pytest

from azure_jit_operator.domain.prefixes import IPV6_UNSUPPORTED
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


IPV6_SOURCES = ["2001:db8::7", "2001:db8::/64", "2001:db8::7/64", "fe80::1%eth0", "::/0"]


@pytest.mark.parametrize("source", IPV6_SOURCES, ids=lambda s: f"{s} in a policy")
def test_a_policy_allowing_an_ipv6_source_is_refused_as_azure_would(source: str) -> None:
    spec = policy_spec({"vm-web-01": [port_rule(22, prefixes=["198.51.100.0/24", source])]})

    with pytest.raises(SpecError) as caught:
        parse_policy_spec(spec, name="web-admins")

    assert caught.value.field == "spec.virtualMachines[0].ports[0].allowedSourceAddressPrefixes[1]"
    assert caught.value.message == f"{source!r}: {IPV6_UNSUPPORTED}"


def test_a_selector_port_template_allowing_an_ipv6_source_is_refused() -> None:
    spec = policy_spec()
    spec["vmSelector"] = {"all": True, "ports": [port_rule(22, prefixes=["2001:db8::/48"])]}

    with pytest.raises(SpecError) as caught:
        parse_policy_spec(spec, name="web-admins")

    assert caught.value.field == "spec.vmSelector.ports[0].allowedSourceAddressPrefixes[0]"
    assert IPV6_UNSUPPORTED in caught.value.message


@pytest.mark.parametrize("source", IPV6_SOURCES, ids=lambda s: f"{s} in a request")
def test_a_request_from_an_ipv6_source_is_refused_as_azure_would(source: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_request_spec(request_spec(ports=[(22, source)]))

    assert caught.value.field == "spec.ports[0].sourceAddressPrefix"
    assert caught.value.message == f"{source!r}: {IPV6_UNSUPPORTED}"


def test_the_ipv6_refusal_says_what_to_use_instead() -> None:
    assert "Azure JIT does not support IPv6 sources" in IPV6_UNSUPPORTED
    assert "IPv4 address (198.51.100.7)" in IPV6_UNSUPPORTED
    assert "'*'" in IPV6_UNSUPPORTED


@pytest.mark.parametrize(
    ("source", "sent_as"),
    [("::ffff:198.51.100.7", "198.51.100.7/32"), ("::ffff:198.51.100.0/120", "198.51.100.0/24")],
)
def test_an_ipv4_mapped_source_stored_earlier_still_parses_as_its_ipv4_address(
    source: str, sent_as: str
) -> None:
    """The CRDs refuse every ':' form at admission; a request stored before that still parses
    (it is IPv4), so its ports can be closed and its grant released."""
    request = parse_request_spec(request_spec(ports=[(22, source)]))
    policy = parse_policy_spec(
        policy_spec({"vm-web-01": [port_rule(22, prefixes=[source])]}), name="web-admins"
    )

    assert request.ports[0].source_prefix.text == sent_as
    assert policy.virtual_machines[0].ports[0].allowed_source_prefixes[0].text == sent_as


def test_ipv4_sources_and_any_still_parse_unchanged() -> None:
    request = parse_request_spec(request_spec(ports=[(22, "198.51.100.7"), (80, "*")]))

    assert [p.source_prefix.text for p in request.ports] == ["198.51.100.7/32", "*"]
