"""VM selectors: which VMs a tag rule picks, and how a policy grows and shrinks with them."""

from typing import Any

import pytest

from azure_jit_operator.domain.azure_policy import desired_policy
from azure_jit_operator.domain.specs import SpecError, parse_policy_spec
from azure_jit_operator.domain.vm_selection import VmInfo, membership_changes, select_vms
from tests.support.manifests import policy_spec, port_rule

VMS = [
    VmInfo("vm-a", "id-a", "westeurope", {"jit": "enabled", "env": "prod"}),
    VmInfo("vm-b", "id-b", "West Europe", {"JIT": "enabled"}),
    VmInfo("vm-c", "id-c", "westeurope", {"jit": "Enabled"}),
    VmInfo("vm-d", "id-d", "northeurope", {"jit": "enabled"}),
    VmInfo("vm-e", "id-e", "westeurope", {}),
]


def selector_policy(selector: dict[str, Any], vms: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = policy_spec(vms or {})
    if vms is None:
        del spec["virtualMachines"]
    spec["vmSelector"] = selector
    return spec


def test_tags_select_by_name_case_insensitively_and_by_value_exactly_in_the_policy_location() -> (
    None
):
    spec = parse_policy_spec(
        selector_policy({"matchTags": {"jit": "enabled"}, "ports": [port_rule(22)]}), name="p"
    )
    assert spec.selector is not None
    assert select_vms(spec.selector, VMS, location="westeurope") == ("vm-a", "vm-b")


def test_all_selects_every_vm_of_the_location() -> None:
    spec = parse_policy_spec(selector_policy({"all": True, "ports": [port_rule(22)]}), name="p")
    assert spec.selector is not None
    assert select_vms(spec.selector, VMS, location="westeurope") == ("vm-a", "vm-b", "vm-c", "vm-e")


def test_every_tag_must_match() -> None:
    spec = parse_policy_spec(
        selector_policy({"matchTags": {"jit": "enabled", "env": "prod"}, "ports": [port_rule(22)]}),
        name="p",
    )
    assert spec.selector is not None
    assert select_vms(spec.selector, VMS, location="westeurope") == ("vm-a",)


def test_selected_vms_get_the_template_while_listed_vms_keep_their_own_ports() -> None:
    spec = parse_policy_spec(
        selector_policy(
            {"all": True, "ports": [port_rule(22)]},
            vms={"vm-a": [port_rule(3389, max_duration="1h")]},
        ),
        name="p",
    )
    effective = spec.with_selected(["vm-a", "vm-b"])
    ports = {vm.name: [p.number for p in vm.ports] for vm in effective.virtual_machines}
    assert ports == {"vm-a": [3389], "vm-b": [22]}
    assert len(desired_policy(effective).virtual_machines) == 2


def test_membership_changes_name_onboarded_and_dropped_vms() -> None:
    assert membership_changes(["vm-a", "vm-b"], ["VM-B", "vm-c"]) == (("vm-c",), ("vm-a",))


@pytest.mark.parametrize(
    "selector",
    [
        pytest.param(
            {"matchTags": {"jit": "enabled"}, "all": True, "ports": [port_rule(22)]},
            id="both tags and all",
        ),
        pytest.param({"ports": [port_rule(22)]}, id="neither tags nor all"),
    ],
)
def test_a_selector_needs_exactly_one_rule(selector: dict[str, Any]) -> None:
    with pytest.raises(SpecError, match="set exactly one of matchTags"):
        parse_policy_spec(selector_policy(selector), name="p")


def test_a_policy_with_only_a_selector_needs_no_vm_list() -> None:
    spec = parse_policy_spec(selector_policy({"all": True, "ports": [port_rule(22)]}), name="p")
    assert spec.virtual_machines == ()


def test_adopt_is_read_from_the_azure_block() -> None:
    raw = policy_spec()
    raw["azure"]["adopt"] = True
    assert parse_policy_spec(raw, name="p").adopt
