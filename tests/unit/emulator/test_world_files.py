"""World files: the default world the examples rely on, generated worlds, and errors that
say where a world file is wrong."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from azure_arm_emulator import ids
from azure_arm_emulator.store import Store
from azure_arm_emulator.world import (
    WorldError,
    default_world_path,
    generate_world,
    load_world,
    parse_world,
    world_to_dict,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SUB = "00000000-0000-0000-0000-000000000000"


def _store(world_data: object) -> Store:
    return Store.from_world(parse_world(world_data), now=NOW)


def test_default_world_ships_inside_the_package() -> None:
    path = default_world_path()

    assert path.name == "default.yaml"
    assert path.parent.parent.name == "azure_arm_emulator"
    assert path.is_file()


def test_default_world_has_the_vms_the_examples_use() -> None:
    store = Store.from_world(load_world(), now=NOW)

    for name in ("vm-web-01", "vm-web-02", "vm-db-01"):
        vm = store.vm_by_id(ids.vm_id(SUB, "rg-web", name))
        assert vm is not None, name
        assert vm.location == "westeurope"


@pytest.mark.parametrize(
    ("vm", "nsgs"),
    [
        pytest.param("vm-web-01", ["nsg-vm-web-01"], id="vm-web-01 is guarded by its NIC NSG"),
        pytest.param("vm-web-02", ["nsg-vm-web-02"], id="vm-web-02 is guarded by its NIC NSG"),
        pytest.param("vm-db-01", ["nsg-snet-db"], id="vm-db-01 is guarded by its subnet NSG"),
        pytest.param(
            "vm-app-01", ["nsg-vm-app-01", "nsg-snet-app"], id="vm-app-01 is guarded by both"
        ),
        pytest.param("vm-legacy-01", [], id="vm-legacy-01 is not guarded at all"),
    ],
)
def test_default_world_guards_each_vm_as_documented(vm: str, nsgs: list[str]) -> None:
    store = Store.from_world(load_world(), now=NOW)
    found = store.vm_by_id(ids.vm_id(SUB, "rg-web", vm))
    assert found is not None

    assert [guard.nsg.name for guard in store.guards(found)] == nsgs


def test_generated_world_spreads_vms_over_subscriptions_and_groups() -> None:
    world = generate_world(vms=100, subscriptions=2, resource_groups_per_subscription=5)
    store = Store.from_world(world, now=NOW)

    assert len(store.vms) == 100
    assert len(store.subscriptions) == 2
    assert len(store.resource_groups) == 10
    assert {
        len([v for v in store.vms.values() if v.resource_group == rg.name])
        for rg in store.resource_groups.values()
    } == {10}
    assert all(store.guards(vm) for vm in store.vms.values())


def test_generated_world_round_trips_through_yaml() -> None:
    world = generate_world(vms=12, subscriptions=1, resource_groups_per_subscription=2)

    reloaded = parse_world(yaml.safe_load(yaml.safe_dump(world_to_dict(world))))

    assert world_to_dict(reloaded) == world_to_dict(world)


def test_generated_addresses_are_unique_per_subnet() -> None:
    store = Store.from_world(generate_world(vms=600, resource_groups_per_subscription=1), now=NOW)

    addresses = [(nic.subnet, nic.private_ip) for nic in store.nics.values()]

    assert len(addresses) == len(set(addresses)) == 600


def _rg(**vm: object) -> dict[str, object]:
    return {
        "subscriptions": [
            {
                "id": SUB,
                "resourceGroups": [
                    {
                        "name": "rg",
                        "location": "westeurope",
                        "virtualNetworks": [
                            {
                                "name": "vnet",
                                "addressSpace": ["10.0.0.0/16"],
                                "subnets": [{"name": "snet", "addressPrefix": "10.0.0.0/29"}],
                            }
                        ],
                        "networkSecurityGroups": [{"name": "nsg"}],
                        "virtualMachines": [{"name": "vm", "subnet": "vnet/snet", **vm}],
                    }
                ],
            }
        ]
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({}, "at least one subscription", id="a world without subscriptions"),
        pytest.param(
            {"subscriptions": [{"id": SUB, "resourceGroups": [{"name": "rg"}]}]},
            "resourceGroups[0]: 'location' must be a non-empty string",
            id="a resource group without a location",
        ),
        pytest.param(
            _rg(networkSecurityGroup="nsg-missing"),
            "network security group 'nsg-missing' does not exist",
            id="a VM naming an NSG that does not exist",
        ),
        pytest.param(
            _rg(subnet="vnet/nope"),
            "subnet 'vnet/nope' does not exist",
            id="a VM naming a subnet that does not exist",
        ),
        pytest.param(
            {"subscriptions": "many"}, "subscriptions: expected a list", id="a list that is not one"
        ),
    ],
)
def test_broken_world_says_what_is_wrong(data: object, message: str) -> None:
    with pytest.raises(WorldError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _store(data)


def test_small_subnet_runs_out_of_addresses_loudly() -> None:
    data = _rg()
    vms = data["subscriptions"][0]["resourceGroups"][0]["virtualMachines"]  # type: ignore[index]
    vms.extend({"name": f"vm{i}", "subnet": "vnet/snet"} for i in range(5))

    with pytest.raises(WorldError, match="no free address"):
        _store(data)
