"""The Azure policy derived from a JitPolicy is canonical: equal specs compare equal, so a
no-op resync writes nothing."""

from datetime import timedelta

from azure_jit_operator.domain.azure_policy import (
    AzurePolicyContent,
    AzurePortRule,
    AzureVmRule,
    desired_policy,
)
from azure_jit_operator.domain.specs import parse_policy_spec
from tests.support.manifests import policy_spec, port_rule

VM1 = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-web"
    "/providers/Microsoft.Compute/virtualMachines/vm-web-01"
)


def derive(vms: dict[str, list[dict[str, object]]]) -> AzurePolicyContent:
    return desired_policy(parse_policy_spec(policy_spec(vms), name="p"))


def test_the_policy_names_each_vm_by_resource_id_with_iso_durations_in_the_model() -> None:
    content = derive({"vm-web-01": [port_rule(22, prefixes=["203.0.113.0/24", "198.51.100.0/24"])]})
    assert content == AzurePolicyContent(
        virtual_machines=(
            AzureVmRule(
                id=VM1,
                ports=(
                    AzurePortRule(
                        number=22,
                        protocol="TCP",
                        allowed_source_address_prefixes=("198.51.100.0/24", "203.0.113.0/24"),
                        max_request_access_duration=timedelta(hours=3),
                    ),
                ),
            ),
        )
    )


def test_order_of_vms_ports_and_prefixes_does_not_matter() -> None:
    a = derive(
        {
            "vm-web-01": [port_rule(22, prefixes=["10.0.0.0/8", "192.168.0.0/16"]), port_rule(443)],
            "vm-web-02": [port_rule(22)],
        }
    )
    b = derive(
        {
            "vm-web-02": [port_rule(22)],
            "vm-web-01": [port_rule(443), port_rule(22, prefixes=["192.168.0.0/16", "10.0.0.0/8"])],
        }
    )
    assert a == b
    assert not a.differs_from(b)


def test_resource_id_casing_from_azure_is_not_a_difference() -> None:
    desired = derive({"vm-web-01": [port_rule(22)]})
    actual = AzurePolicyContent.of(
        [AzureVmRule(id=VM1.lower(), ports=desired.virtual_machines[0].ports)]
    )
    assert not desired.differs_from(actual)
    assert desired.vm_ids() == actual.vm_ids()


def test_a_changed_maximum_duration_is_a_difference() -> None:
    assert derive({"vm-web-01": [port_rule(22, max_duration="3h")]}).differs_from(
        derive({"vm-web-01": [port_rule(22, max_duration="180m1s")]})
    )


def test_an_added_vm_is_a_difference() -> None:
    assert derive({"vm-web-01": [port_rule(22)]}).differs_from(
        derive({"vm-web-01": [port_rule(22)], "vm-web-02": [port_rule(22)]})
    )
