"""The world file: what exists in the emulated Azure when the emulator starts.

A world is YAML (or the same structure as a dict)::

    subscriptions:
      - id: 00000000-0000-0000-0000-000000000000
        displayName: Contoso dev
        resourceGroups:
          - name: rg-web
            location: westeurope
            virtualNetworks:
              - name: vnet-web
                addressSpace: [10.10.0.0/16]
                subnets:
                  - {name: snet-web, addressPrefix: 10.10.1.0/24}
                  - {name: snet-db, addressPrefix: 10.10.2.0/24, networkSecurityGroup: nsg-snet-db}
            networkSecurityGroups:
              - name: nsg-vm-web-01
                securityRules:            # optional custom rules, ARM shape
                  - {name: allow-https, properties: {protocol: Tcp, ...}}
            virtualMachines:
              - name: vm-web-01
                tags: {role: web}
                subnet: vnet-web/snet-web       # or a full subnet id
                networkSecurityGroup: nsg-vm-web-01   # NIC NSG (optional)
                privateIpAddress: 10.10.1.4     # optional, allocated from the subnet
                # several NICs: networkInterfaces: [{name, subnet, networkSecurityGroup}]
    tokens:                                     # optional: bearer tokens with limited scopes
      - token: reader-web
        principal: reader@contoso.example
        scopes: [/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-web]
    identities:                                 # optional: Entra identities (see .identities)
      - {clientId: <GUID>, tenantId: <GUID>, secret: ..., federatedSubjects: [...], scopes: [...]}

NSG and subnet references are names in the same resource group or full resource ids.
:func:`generate_world` builds large worlds (many VMs, tags, several subscriptions) for
benchmarks and scale tests; :func:`world_to_dict` turns any world back into this shape.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, cast

import yaml

from azure_arm_emulator.identities import Identity, IdentityError, parse_identity

DEFAULT_WORLD_RESOURCE = "default.yaml"


class WorldError(ValueError):
    """The world file does not describe a usable world; the message says where."""


@dataclass
class NicSpec:
    name: str
    subnet: str
    private_ip_address: str | None = None
    network_security_group: str | None = None


@dataclass
class VmSpec:
    name: str
    nics: list[NicSpec]
    location: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    size: str = "Standard_B2s"
    os_type: str = "Linux"
    admin_username: str = "azureuser"
    user_data: str | None = None
    vm_id: str | None = None
    zones: list[str] = field(default_factory=list)


@dataclass
class SubnetSpec:
    name: str
    address_prefix: str
    network_security_group: str | None = None


@dataclass
class VnetSpec:
    name: str
    address_space: list[str]
    subnets: list[SubnetSpec]
    location: str | None = None


@dataclass
class NsgSpec:
    name: str
    location: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    security_rules: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ResourceGroupSpec:
    name: str
    location: str
    tags: dict[str, str] = field(default_factory=dict)
    virtual_networks: list[VnetSpec] = field(default_factory=list)
    network_security_groups: list[NsgSpec] = field(default_factory=list)
    virtual_machines: list[VmSpec] = field(default_factory=list)


@dataclass
class SubscriptionSpec:
    id: str
    display_name: str
    resource_groups: list[ResourceGroupSpec] = field(default_factory=list)


@dataclass
class TokenSpec:
    token: str
    principal: str
    object_id: str
    scopes: list[str]


@dataclass
class World:
    subscriptions: list[SubscriptionSpec]
    tokens: list[TokenSpec] = field(default_factory=list)
    identities: list[Identity] = field(default_factory=list)


# --------------------------------------------------------------------------- loading


def default_world_path() -> Path:
    """The default world shipped as package data (used by ``make demo`` and tests)."""
    return Path(str(resources.files(__package__).joinpath("worlds", DEFAULT_WORLD_RESOURCE)))


def load_world(path: Path | None = None) -> World:
    """Read a world YAML file (the default world when ``path`` is None)."""
    source = path or default_world_path()
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise WorldError(f"cannot read world file {source}: {exc}") from None
    return parse_world(data, where=str(source))


def parse_world(data: object, *, where: str = "world") -> World:
    root = _mapping(data, where)
    subscriptions = [
        _subscription(item, f"{where}: subscriptions[{i}]")
        for i, item in enumerate(_list(root.get("subscriptions"), f"{where}: subscriptions"))
    ]
    if not subscriptions:
        raise WorldError(f"{where}: at least one subscription is required")
    tokens = [
        _token(item, f"{where}: tokens[{i}]")
        for i, item in enumerate(_list(root.get("tokens", []), f"{where}: tokens"))
    ]
    try:
        identities = [
            parse_identity(item, where=f"{where}: identities[{i}]")
            for i, item in enumerate(_list(root.get("identities", []), f"{where}: identities"))
        ]
    except IdentityError as exc:
        raise WorldError(str(exc)) from None
    if len({identity.key for identity in identities}) != len(identities):
        raise WorldError(f"{where}: identities: each clientId may appear only once")
    return World(subscriptions=subscriptions, tokens=tokens, identities=identities)


def parse_vm(data: object, *, where: str = "vm") -> VmSpec:
    """One ``virtualMachines`` entry (also the body of the admin API's add-VM call)."""
    item = _mapping(data, where)
    name = _text(item, "name", where)
    if "networkInterfaces" in item:
        nics = [
            _nic(nic, f"{where}.networkInterfaces[{i}]")
            for i, nic in enumerate(_list(item["networkInterfaces"], where))
        ]
    else:
        nics = [
            NicSpec(
                name=str(item.get("nicName", f"{name}-nic")),
                subnet=_text(item, "subnet", where),
                private_ip_address=_optional_text(item, "privateIpAddress", where),
                network_security_group=_optional_text(item, "networkSecurityGroup", where),
            )
        ]
    if not nics:
        raise WorldError(f"{where}: a VM needs at least one network interface")
    return VmSpec(
        name=name,
        nics=nics,
        location=_optional_text(item, "location", where),
        tags=_tags(item.get("tags"), where),
        size=str(item.get("size", "Standard_B2s")),
        os_type=str(item.get("osType", "Linux")),
        admin_username=str(item.get("adminUsername", "azureuser")),
        user_data=_optional_text(item, "userData", where),
        vm_id=_optional_text(item, "vmId", where),
        zones=[str(z) for z in _list(item.get("zones", []), where)],
    )


def _subscription(data: object, where: str) -> SubscriptionSpec:
    item = _mapping(data, where)
    sub_id = _text(item, "id", where)
    groups = [
        _resource_group(group, f"{where}.resourceGroups[{i}]")
        for i, group in enumerate(_list(item.get("resourceGroups", []), where))
    ]
    return SubscriptionSpec(
        id=sub_id, display_name=str(item.get("displayName", sub_id)), resource_groups=groups
    )


def _resource_group(data: object, where: str) -> ResourceGroupSpec:
    item = _mapping(data, where)
    return ResourceGroupSpec(
        name=_text(item, "name", where),
        location=_text(item, "location", where),
        tags=_tags(item.get("tags"), where),
        virtual_networks=[
            _vnet(v, f"{where}.virtualNetworks[{i}]")
            for i, v in enumerate(_list(item.get("virtualNetworks", []), where))
        ],
        network_security_groups=[
            _nsg(n, f"{where}.networkSecurityGroups[{i}]")
            for i, n in enumerate(_list(item.get("networkSecurityGroups", []), where))
        ],
        virtual_machines=[
            parse_vm(v, where=f"{where}.virtualMachines[{i}]")
            for i, v in enumerate(_list(item.get("virtualMachines", []), where))
        ],
    )


def _vnet(data: object, where: str) -> VnetSpec:
    item = _mapping(data, where)
    return VnetSpec(
        name=_text(item, "name", where),
        address_space=[str(p) for p in _list(item.get("addressSpace", []), where)],
        location=_optional_text(item, "location", where),
        subnets=[
            SubnetSpec(
                name=_text(_mapping(s, where), "name", f"{where}.subnets[{i}]"),
                address_prefix=_text(_mapping(s, where), "addressPrefix", f"{where}.subnets[{i}]"),
                network_security_group=_optional_text(
                    _mapping(s, where), "networkSecurityGroup", where
                ),
            )
            for i, s in enumerate(_list(item.get("subnets", []), where))
        ],
    )


def _nsg(data: object, where: str) -> NsgSpec:
    item = _mapping(data, where)
    return NsgSpec(
        name=_text(item, "name", where),
        location=_optional_text(item, "location", where),
        tags=_tags(item.get("tags"), where),
        security_rules=[
            _mapping(r, f"{where}.securityRules[{i}]")
            for i, r in enumerate(_list(item.get("securityRules", []), where))
        ],
    )


def _nic(data: object, where: str) -> NicSpec:
    item = _mapping(data, where)
    return NicSpec(
        name=_text(item, "name", where),
        subnet=_text(item, "subnet", where),
        private_ip_address=_optional_text(item, "privateIpAddress", where),
        network_security_group=_optional_text(item, "networkSecurityGroup", where),
    )


def _token(data: object, where: str) -> TokenSpec:
    item = _mapping(data, where)
    return TokenSpec(
        token=_text(item, "token", where),
        principal=str(item.get("principal", "emulated-principal")),
        object_id=str(item.get("objectId", uuid.uuid5(uuid.NAMESPACE_OID, str(item["token"])))),
        scopes=[str(s) for s in _list(item.get("scopes", []), where)],
    )


def _mapping(data: object, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise WorldError(f"{where}: expected a mapping")
    return cast(dict[str, Any], data)


def _list(data: object, where: str) -> list[Any]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise WorldError(f"{where}: expected a list")
    return data


def _text(item: dict[str, Any], name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise WorldError(f"{where}: '{name}' must be a non-empty string")
    return value


def _optional_text(item: dict[str, Any], name: str, where: str) -> str | None:
    if item.get(name) is None:
        return None
    return _text(item, name, where)


def _tags(data: object, where: str) -> dict[str, str]:
    if data is None:
        return {}
    return {str(k): str(v) for k, v in _mapping(data, f"{where}.tags").items()}


# --------------------------------------------------------------------------- generating


def generate_world(
    *,
    vms: int,
    subscriptions: int = 1,
    resource_groups_per_subscription: int = 4,
    location: str = "westeurope",
    subnet_nsg_every: int = 5,
) -> World:
    """A world of ``vms`` VMs spread round-robin over subscriptions and resource groups.

    Subscription ids are ``00000000-0000-0000-0000-00000000000{n}`` style GUIDs; resource
    groups ``rg-scale-{n}``; VMs ``vm-{n:05d}`` tagged ``env`` (prod/staging/dev), ``role``
    (web/db/app), ``jit`` (``enabled`` on every other VM of each resource group) and
    ``index``. Every ``subnet_nsg_every``-th VM sits in a subnet guarded by a subnet NSG
    instead of having a NIC NSG, so both resolution paths are exercised at scale.
    """
    if vms < 0 or subscriptions < 1 or resource_groups_per_subscription < 1:
        raise ValueError("need vms >= 0, subscriptions >= 1, resource groups >= 1")
    envs, roles = ("prod", "staging", "dev"), ("web", "db", "app")
    subs = [
        SubscriptionSpec(id=f"00000000-0000-0000-0000-{s + 1:012d}", display_name=f"scale-{s + 1}")
        for s in range(subscriptions)
    ]
    groups: list[ResourceGroupSpec] = []
    for s, sub in enumerate(subs):
        for g in range(resource_groups_per_subscription):
            index = s * resource_groups_per_subscription + g
            group = ResourceGroupSpec(
                name=f"rg-scale-{index + 1}",
                location=location,
                virtual_networks=[
                    VnetSpec(name="vnet-scale", address_space=["10.0.0.0/8"], subnets=[])
                ],
                network_security_groups=[NsgSpec(name="nsg-snet-guarded")],
            )
            sub.resource_groups.append(group)
            groups.append(group)
    for i in range(vms):
        group = groups[i % len(groups)]
        vnet = group.virtual_networks[0]
        slot = i // len(groups)
        subnet_index = slot // 250
        guarded = subnet_nsg_every > 0 and i % subnet_nsg_every == 0
        subnet_name = f"snet-{'guarded' if guarded else 'open'}-{subnet_index}"
        if not any(s.name == subnet_name for s in vnet.subnets):
            second = (subnet_index * 2 + (1 if guarded else 0)) % 65536
            vnet.subnets.append(
                SubnetSpec(
                    name=subnet_name,
                    address_prefix=f"10.{second // 256}.{second % 256}.0/24",
                    network_security_group="nsg-snet-guarded" if guarded else None,
                )
            )
        name = f"vm-{i:05d}"
        nic_nsg = None if guarded else f"nsg-{name}"
        if nic_nsg:
            group.network_security_groups.append(NsgSpec(name=nic_nsg))
        group.virtual_machines.append(
            VmSpec(
                name=name,
                nics=[
                    NicSpec(
                        name=f"{name}-nic",
                        subnet=f"{vnet.name}/{subnet_name}",
                        network_security_group=nic_nsg,
                    )
                ],
                tags={
                    "env": envs[i % len(envs)],
                    "role": roles[(i // len(envs)) % len(roles)],
                    "jit": "enabled" if slot % 2 == 0 else "disabled",
                    "index": str(i),
                },
            )
        )
    return World(subscriptions=subs)


def world_to_dict(world: World) -> dict[str, Any]:
    """The YAML-ready form of ``world`` (inverse of :func:`parse_world`)."""

    def vm(spec: VmSpec) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": spec.name,
            "tags": dict(spec.tags),
            "size": spec.size,
            "osType": spec.os_type,
            "networkInterfaces": [
                {
                    key: value
                    for key, value in (
                        ("name", nic.name),
                        ("subnet", nic.subnet),
                        ("privateIpAddress", nic.private_ip_address),
                        ("networkSecurityGroup", nic.network_security_group),
                    )
                    if value is not None
                }
                for nic in spec.nics
            ],
        }
        for key, value in (
            ("location", spec.location),
            ("userData", spec.user_data),
            ("vmId", spec.vm_id),
        ):
            if value is not None:
                out[key] = value
        return out

    return {
        "subscriptions": [
            {
                "id": sub.id,
                "displayName": sub.display_name,
                "resourceGroups": [
                    {
                        "name": rg.name,
                        "location": rg.location,
                        "tags": dict(rg.tags),
                        "virtualNetworks": [
                            {
                                "name": vnet.name,
                                "addressSpace": list(vnet.address_space),
                                "subnets": [
                                    {
                                        "name": s.name,
                                        "addressPrefix": s.address_prefix,
                                        **(
                                            {"networkSecurityGroup": s.network_security_group}
                                            if s.network_security_group
                                            else {}
                                        ),
                                    }
                                    for s in vnet.subnets
                                ],
                            }
                            for vnet in rg.virtual_networks
                        ],
                        "networkSecurityGroups": [
                            {
                                "name": n.name,
                                "tags": dict(n.tags),
                                "securityRules": n.security_rules,
                            }
                            for n in rg.network_security_groups
                        ],
                        "virtualMachines": [vm(v) for v in rg.virtual_machines],
                    }
                    for rg in sub.resource_groups
                ],
            }
            for sub in world.subscriptions
        ],
        "tokens": [
            {
                "token": t.token,
                "principal": t.principal,
                "objectId": t.object_id,
                "scopes": t.scopes,
            }
            for t in world.tokens
        ],
        "identities": [identity.to_dict() for identity in world.identities],
    }
