"""JIT for hundreds of VMs: an emulator world of 300 VMs over 3 resource groups and 2
subscriptions, one tag-selecting JitPolicy per resource group. Tagged VMs are onboarded,
a VM tagged later joins, an untagged one leaves, and ARM writes equal the real changes."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
import yaml

from azure_arm_emulator.world import generate_world, world_to_dict
from tests.support.controlplane import ControlPlane
from tests.support.emulator import EmulatorEndpoint, EmulatorProcess, start_emulator_process
from tests.support.manifests import manifest, port_rule
from tests.support.operator import JitWorld, jit_world, wait_for

PUTS = "JitNetworkAccessPolicies_CreateOrUpdate"
SUB1 = "00000000-0000-0000-0000-000000000001"
SUB2 = "00000000-0000-0000-0000-000000000002"
GROUPS = {"rg-scale-1": SUB1, "rg-scale-2": SUB1, "rg-scale-3": SUB2}


@pytest.fixture(scope="module")
def scale_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    # 400 VMs round-robin over 2 subscriptions x 2 groups, minus the last group: 300 VMs in
    # rg-scale-1/2 (subscription 1) and rg-scale-3 (subscription 2), half tagged jit=enabled.
    world = generate_world(vms=400, subscriptions=2, resource_groups_per_subscription=2)
    world.subscriptions[1].resource_groups.pop()
    work = tmp_path_factory.mktemp("scale-emulator")
    path = work / "world.yaml"
    path.write_text(yaml.safe_dump(world_to_dict(world)))
    process = start_emulator_process(work, "--world", str(path), "--page-size", "25")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def scale(
    control_plane: ControlPlane, scale_emulator: EmulatorProcess, namespace: str
) -> Iterator[JitWorld]:
    assert scale_emulator.endpoint is not None
    endpoint: EmulatorEndpoint = scale_emulator.endpoint
    with jit_world(
        control_plane, endpoint, namespace, drift_interval=timedelta(seconds=5)
    ) as world:
        yield world


def tagged_policy(group: str) -> dict[str, object]:
    spec = {
        "azure": {
            "subscriptionId": GROUPS[group],
            "resourceGroup": group,
            "location": "westeurope",
        },
        "vmSelector": {
            "matchTags": {"jit": "enabled"},
            "ports": [port_rule(22, max_duration="1h")],
        },
    }
    return manifest("JitPolicy", group, spec)


def azure_vm_names(world: JitWorld, group: str) -> set[str]:
    policy = next(p for p in world.admin.state()["jitNetworkAccessPolicies"] if p["name"] == group)
    return {vm["id"].rsplit("/", 1)[-1] for vm in policy["properties"]["virtualMachines"]}


def test_tag_selected_vms_are_onboarded_and_follow_their_tags(scale: JitWorld) -> None:
    for group in GROUPS:
        scale.apply(tagged_policy(group))
    statuses = {group: scale.wait_policy_ready(group, timeout=60) for group in GROUPS}
    assert {g: s["virtualMachineCount"] for g, s in statuses.items()} == dict.fromkeys(GROUPS, 50)
    assert scale.calls(PUTS) == 3  # one write per policy, not one per VM
    # 100 VMs per group at 25 per page: every page was read.
    assert len(azure_vm_names(scale, "rg-scale-1")) == 50

    selected = sorted(statuses["rg-scale-1"]["virtualMachines"])
    leaving = selected[0]
    joining = next(
        vm["name"]
        for vm in scale.admin.state()["virtualMachines"]
        if vm["resourceGroup"] == "rg-scale-1" and vm["tags"].get("jit") == "disabled"
    )
    scale.admin.set_vm_tags(SUB1, "rg-scale-1", leaving, {"jit": "disabled"})
    scale.admin.set_vm_tags(SUB1, "rg-scale-1", joining, {"jit": "enabled"})

    wait_for(
        lambda: (
            joining in azure_vm_names(scale, "rg-scale-1")
            and leaving not in azure_vm_names(scale, "rg-scale-1")
        ),
        timeout=30,
        what="the next drift check to onboard and drop",
    )
    assert scale.wait_event("rg-scale-1", "Onboarded")["message"].endswith(joining)
    assert scale.wait_event("rg-scale-1", "Dropped")["message"].endswith(leaving)
    # Exactly one more write: one real change in one policy; the others stayed untouched.
    wait_for(
        lambda: (
            sorted(scale.status("JitPolicy", "rg-scale-1").get("virtualMachines", [])) != selected
        ),
        timeout=15,
        what="status to list the new selection",
    )
    assert scale.calls(PUTS) == 4


def test_a_request_for_a_selected_vm_opens_with_the_template_ports(scale: JitWorld) -> None:
    scale.apply(tagged_policy("rg-scale-3"))
    status = scale.wait_policy_ready("rg-scale-3", timeout=60)
    vm = status["virtualMachines"][0]
    scale.apply(
        manifest(
            "JitAccessRequest",
            "ssh",
            {
                "policyName": "rg-scale-3",
                "virtualMachine": vm,
                "ports": [{"number": 22, "sourceAddressPrefix": "198.51.100.7"}],
                "duration": "30m",
                "justification": "scale test",
            },
        )
    )
    scale.wait_phase("ssh", "Active", timeout=30)
    access = scale.admin.vm_access(SUB2, "rg-scale-3", vm)
    assert [p["port"] for p in access["openPorts"]] == [22]
