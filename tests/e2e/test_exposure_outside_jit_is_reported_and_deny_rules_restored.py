"""A JIT port is only as closed as its NSGs. Against the emulator's NSGs (changed through the
real azure-mgmt-network SDK, as a team that owns the NSG would), the operator's drift check
reports a customer rule that opens a JIT port anyway, says whether the Internet or only the
virtual network gets in, raises the metric and the alert (a real Prometheus evaluating the
shipped rules), clears all of it when the rule goes, never touches the customer's rule, and
re-applies the Azure policy when JIT's own deny rule was wiped, so JIT re-creates it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from azure.mgmt.network import NetworkManagementClient

from tests.support.emulator import SUBSCRIPTION
from tests.support.manifests import RESOURCE_GROUP, policy_manifest, port_rule
from tests.support.operator import JitWorld, wait_for
from tests.support.prometheus import PrometheusServer, scrape

POLICY = "db-admins"
VM = "vm-db-01"  # no NIC NSG: its subnet's NSG is all that guards it
SUBNET_NSG = "nsg-snet-db"
DRIFT = timedelta(seconds=5)
INTERNET_HOST = "203.0.113.9"
VNET_HOST = "10.10.1.20"  # another subnet of vnet-web

pytestmark = pytest.mark.parametrize(
    "operator_overrides", [{"drift_interval": DRIFT}], ids=["5s drift checks"]
)


@pytest.fixture
def network(jit: JitWorld) -> Iterator[NetworkManagementClient]:
    with NetworkManagementClient(
        jit.emulator.credential(),
        SUBSCRIPTION,
        **jit.emulator.sdk_kwargs(polling_interval=0.1),
    ) as client:
        yield client


def _customer_rule(
    network: NetworkManagementClient, name: str, *, priority: int, source: str
) -> None:
    network.security_rules.begin_create_or_update(
        RESOURCE_GROUP,
        SUBNET_NSG,
        name,
        {
            "properties": {
                "protocol": "Tcp",
                "sourcePortRange": "*",
                "destinationPortRange": "22",
                "sourceAddressPrefix": source,
                "destinationAddressPrefix": "*",
                "access": "Allow",
                "priority": priority,
                "direction": "Inbound",
            }
        },
    ).result()


def _exposed(jit: JitWorld, status: str, reason: str | None = None) -> dict[str, Any]:
    def holds() -> dict[str, Any] | None:
        cond = jit.condition("JitPolicy", POLICY, "Exposed")
        if cond and cond["status"] == status and (reason is None or cond["reason"] == reason):
            return cond
        return None

    try:
        return wait_for(holds, timeout=30, what=f"Exposed={status} ({reason})")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; status: {jit.status('JitPolicy', POLICY)}") from None


def _gauge(jit: JitWorld, name: str) -> float | None:
    assert jit.operator is not None
    return scrape(jit.operator.metrics_port).value(
        name, namespace=jit.namespace, policy=POLICY, vm=VM, port="22"
    )


def _reaches(jit: JitWorld, source: str) -> bool:
    return jit.admin.can_reach(SUBSCRIPTION, RESOURCE_GROUP, VM, source=source, port=22)


def test_a_customer_rule_that_opens_a_jit_port_is_reported_until_removed(
    jit: JitWorld, network: NetworkManagementClient, prometheus: PrometheusServer
) -> None:
    assert jit.operator is not None
    with prometheus.scraping(jit.operator.metrics_port):
        jit.apply(policy_manifest(POLICY, vms={VM: [port_rule(22, max_duration="3h")]}))
        jit.wait_policy_ready(POLICY)
        cond = _exposed(jit, "False", "OnlyJitAdmits")
        assert "reachable only through JIT grants" in cond["message"]
        assert not _reaches(jit, INTERNET_HOST)
        assert _gauge(jit, "azure_jit_ports_exposed") == 0

        # Someone's "allow SSH from anywhere" above JIT's deny rule.
        _customer_rule(network, "allow-ssh-anywhere", priority=200, source="*")
        cond = _exposed(jit, "True", "InternetExposed")
        assert "allow-ssh-anywhere (priority 200, NSG nsg-snet-db)" in cond["message"]
        assert "from the Internet" in cond["message"]
        [port] = jit.status("JitPolicy", POLICY)["exposure"]["ports"]
        assert (port["vm"], port["port"], port["state"], port["internet"]) == (
            VM,
            22,
            "Exposed",
            True,
        )
        rules = {(a["rule"], a["scope"]) for a in port["admittedBy"]}
        assert ("allow-ssh-anywhere", "Internet") in rules
        assert all(a["nsg"].lower().endswith("/" + SUBNET_NSG) for a in port["admittedBy"])
        assert _gauge(jit, "azure_jit_ports_exposed_to_internet") == 1
        # What the operator reports is what the emulated data plane does.
        assert _reaches(jit, INTERNET_HOST)
        jit.wait_event(POLICY, "PortExposed")
        prometheus.wait_for(
            f'ALERTS{{alertname="AzureJitPortExposedToInternet",alertstate="firing",'
            f'namespace="{jit.namespace}",vm="{VM}",port="22"}}',
            timeout=30,
            what="the Internet exposure alert to fire",
        )

        network.security_rules.begin_delete(
            RESOURCE_GROUP, SUBNET_NSG, "allow-ssh-anywhere"
        ).result()
        _exposed(jit, "False", "OnlyJitAdmits")
        assert _gauge(jit, "azure_jit_ports_exposed_to_internet") == 0
        assert not _reaches(jit, INTERNET_HOST)
        jit.wait_event(POLICY, "PortProtected")
        prometheus.wait_for(
            f'ALERTS{{alertname="AzureJitPortExposedToInternet",namespace="{jit.namespace}"}}',
            lambda result: result == [],
            timeout=30,
            what="the alert to clear",
        )


def test_a_rule_that_admits_only_the_virtual_network_is_reported_as_such(
    jit: JitWorld, network: NetworkManagementClient
) -> None:
    jit.apply(policy_manifest(POLICY, vms={VM: [port_rule(22, max_duration="3h")]}))
    jit.wait_policy_ready(POLICY)
    _customer_rule(network, "allow-ssh-from-vnet", priority=210, source="VirtualNetwork")

    cond = _exposed(jit, "True", "ExposedOutsideJit")
    assert "from inside the virtual network" in cond["message"]
    assert "from the Internet" not in cond["message"]
    [port] = jit.status("JitPolicy", POLICY)["exposure"]["ports"]
    assert port["internet"] is False
    assert {a["scope"] for a in port["admittedBy"]} == {"VirtualNetwork"}
    assert {a["rule"] for a in port["admittedBy"]} == {"allow-ssh-from-vnet"}
    assert _gauge(jit, "azure_jit_ports_exposed") == 1
    assert _gauge(jit, "azure_jit_ports_exposed_to_internet") == 0
    assert _reaches(jit, VNET_HOST)
    assert not _reaches(jit, INTERNET_HOST)
    # Reported, never rewritten: the customer's rule is still there as they wrote it.
    kept = network.security_rules.get(RESOURCE_GROUP, SUBNET_NSG, "allow-ssh-from-vnet")
    props = kept.as_dict()["properties"]
    assert (props["access"], props["priority"], props["sourceAddressPrefix"]) == (
        "Allow",
        210,
        "VirtualNetwork",
    )


def test_a_wiped_jit_deny_rule_is_restored_by_re_applying_the_policy(
    jit: JitWorld, network: NetworkManagementClient
) -> None:
    jit.apply(policy_manifest(POLICY, vms={VM: [port_rule(22, max_duration="3h")]}))
    jit.wait_policy_ready(POLICY)
    _exposed(jit, "False", "OnlyJitAdmits")
    [deny] = jit.deny_rules(VM)
    restored_before = scrape(jit.operator.metrics_port).value(  # type: ignore[union-attr]
        "azure_jit_deny_rules_restored_total", namespace=jit.namespace, policy=POLICY
    )

    # What an IaC apply that declares the NSG's complete rule list does to JIT's rule.
    network.security_rules.begin_delete(RESOURCE_GROUP, SUBNET_NSG, deny["name"]).result()

    event = jit.wait_event(POLICY, "DenyRuleRestored", timeout=30)
    assert f"{VM} 22/TCP" in event["message"]
    wait_for(lambda: jit.deny_rules(VM), timeout=30, what="JIT's deny rule back on the NSG")
    _exposed(jit, "False", "OnlyJitAdmits")
    restored = scrape(jit.operator.metrics_port).value(  # type: ignore[union-attr]
        "azure_jit_deny_rules_restored_total", namespace=jit.namespace, policy=POLICY
    )
    assert (restored or 0) >= (restored_before or 0) + 1
