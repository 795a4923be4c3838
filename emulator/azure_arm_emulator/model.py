"""The emulated resources as plain mutable records (no behaviour, no HTTP).

Names and ids keep the spelling they were created with; the store looks them up by
lower-cased key. Fields a client cannot see (which JIT policy owns a rule, the NSG rules a
JIT request opened) are kept here too, since they are how the emulator models JIT's effect.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from azure_arm_emulator import ids


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


@dataclass
class Subscription:
    id: str
    display_name: str


@dataclass
class ResourceGroup:
    subscription: str
    name: str
    location: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return ids.resource_group_id(self.subscription, self.name)


# --------------------------------------------------------------------------- network


@dataclass
class SecurityRule:
    """A custom rule; ``properties`` holds what the client controls (ARM spelling)."""

    name: str
    properties: dict[str, Any]
    etag: str = field(default_factory=new_etag)
    provisioning_state: str = "Succeeded"
    jit_policy: str | None = None  # key of the JIT policy that created it


@dataclass
class Nsg:
    subscription: str
    resource_group: str
    name: str
    location: str
    tags: dict[str, str] = field(default_factory=dict)
    rules: dict[str, SecurityRule] = field(default_factory=dict)  # by lower-cased name
    resource_guid: str = field(default_factory=lambda: str(uuid.uuid4()))
    etag: str = field(default_factory=new_etag)
    provisioning_state: str = "Succeeded"
    flush_connection: bool = False

    @property
    def id(self) -> str:
        return ids.nsg_id(self.subscription, self.resource_group, self.name)

    def touch(self) -> None:
        self.etag = new_etag()


@dataclass
class Subnet:
    subscription: str
    resource_group: str
    vnet: str
    name: str
    address_prefix: str
    nsg: str | None = None  # key of the subnet NSG
    etag: str = field(default_factory=new_etag)

    @property
    def id(self) -> str:
        return ids.subnet_id(self.subscription, self.resource_group, self.vnet, self.name)


@dataclass
class Vnet:
    subscription: str
    resource_group: str
    name: str
    location: str
    address_space: list[str]
    subnets: dict[str, Subnet] = field(default_factory=dict)  # by lower-cased name
    tags: dict[str, str] = field(default_factory=dict)
    resource_guid: str = field(default_factory=lambda: str(uuid.uuid4()))
    etag: str = field(default_factory=new_etag)

    @property
    def id(self) -> str:
        return ids.vnet_id(self.subscription, self.resource_group, self.name)


@dataclass
class Nic:
    subscription: str
    resource_group: str
    name: str
    location: str
    subnet: str  # key of the subnet
    private_ip: str
    nsg: str | None = None  # key of the NIC NSG
    vm: str | None = None  # key of the VM
    primary: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    mac_address: str = field(default_factory=lambda: "00-0D-3A-" + uuid.uuid4().hex[:6].upper())
    resource_guid: str = field(default_factory=lambda: str(uuid.uuid4()))
    etag: str = field(default_factory=new_etag)

    @property
    def id(self) -> str:
        return ids.nic_id(self.subscription, self.resource_group, self.name)


# --------------------------------------------------------------------------- compute


@dataclass
class Vm:
    subscription: str
    resource_group: str
    name: str
    location: str
    nics: list[str]  # keys of the NICs, primary first
    tags: dict[str, str] = field(default_factory=dict)
    vm_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    size: str = "Standard_B2s"
    os_type: str = "Linux"
    admin_username: str = "azureuser"
    user_data: str | None = None
    zones: list[str] = field(default_factory=list)
    time_created: datetime | None = None
    etag_counter: int = 1

    @property
    def id(self) -> str:
        return ids.vm_id(self.subscription, self.resource_group, self.name)


# --------------------------------------------------------------------------- security (JIT)


@dataclass
class JitPortRule:
    number: int
    protocol: str  # TCP | UDP | *
    max_duration: timedelta
    allowed_prefix: str | None = None
    allowed_prefixes: list[str] | None = None

    def allowed(self) -> list[str]:
        if self.allowed_prefixes is not None:
            return list(self.allowed_prefixes)
        return [self.allowed_prefix] if self.allowed_prefix is not None else []


@dataclass
class JitPolicyVm:
    id: str  # as the client spelled it
    ports: list[JitPortRule]
    public_ip_address: str | None = None


@dataclass
class OpenedRule:
    """An NSG rule that JIT created for a request port."""

    nsg: str  # key of the NSG
    rule: str  # rule name


@dataclass
class JitRequestPort:
    number: int
    end_time: datetime
    status: str  # Initiating | Initiated | Revoked
    status_reason: str  # UserRequested | Expired | NewerRequestInitiated
    allowed_prefix: str | None = None
    allowed_prefixes: list[str] | None = None
    opened: list[OpenedRule] = field(default_factory=list)
    end_time_text: str | None = None  # endTimeUtc as the client sent it (E7), if it did


@dataclass
class JitRequestVm:
    id: str
    ports: list[JitRequestPort]


@dataclass
class JitRequest:
    virtual_machines: list[JitRequestVm]
    start_time: datetime
    requestor: str
    justification: str | None = None


@dataclass
class DenyRuleRef:
    """A deny rule JIT keeps on an NSG for one VM and protocol of a policy."""

    nsg: str  # key of the NSG
    vm: str  # key of the VM
    protocol: str
    rule: str  # rule name


@dataclass
class JitPolicy:
    subscription: str
    resource_group: str
    location: str
    name: str
    virtual_machines: list[JitPolicyVm]
    kind: str | None = "Basic"
    requests: list[JitRequest] = field(default_factory=list)
    provisioning_state: str = "Succeeded"
    settles_at: datetime | None = None  # "Updating" until then (E6)
    deny_rules: list[DenyRuleRef] = field(default_factory=list)

    @property
    def id(self) -> str:
        return ids.jit_policy_id(self.subscription, self.resource_group, self.location, self.name)
