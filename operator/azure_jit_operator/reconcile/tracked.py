"""What the controller keeps per JitAccessRequest between reconciles: the object as last
seen, the status it last wrote, and the little in-memory state a close or an approval needs.

Everything here is derivable again after a restart (from the object's status and the NSG),
except timings that only make a close faster; losing them is safe."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from azure_jit_operator.domain.conditions import Condition
from azure_jit_operator.domain.extension import Link
from azure_jit_operator.domain.grants import Claim, RequestRef
from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.domain.request_status import RequestStatus
from azure_jit_operator.domain.specs import AzureTarget, JitAccessRequestSpec, SpecError
from azure_jit_operator.domain.specs import parse_request_spec as _parse
from azure_jit_operator.reconcile.objects import ObjectView
from azure_jit_operator.reconcile.recorder import Recorder

VmKey = tuple[str, str]  # namespace, VM id (lower-cased)
RequestKey = tuple[str, str]  # namespace, name


@dataclass(frozen=True, slots=True)
class Binding:
    """A judged request's place in Azure: which policy, VM and target it opens through."""

    policy_name: str
    vm_name: str
    vm_id: str
    policy_id: str
    target: AzureTarget
    spec: JitAccessRequestSpec
    extension: Link | None = None  # an extension: of whom, and its end


@dataclass(slots=True)
class Tracked:
    obj: ObjectView
    recorder: Recorder
    finalized: bool
    first_seen: datetime
    binding: Binding | None = None
    approval: tuple[Condition, ...] = ()
    # This process initiated (or adopted) the intent recorded in the status: no need to ask
    # Azure's history whether it arrived.
    initiate_known: bool = False
    verified_at: datetime | None = None
    forcing_since: datetime | None = None
    deleted_at: datetime | None = None
    revoke: asyncio.Future[str] | None = None
    initiating: bool = False  # an initiate for it is in flight (its VM's open reconcile)
    finalizer_reported: bool = False

    @property
    def status(self) -> RequestStatus:
        return self.recorder.status

    @property
    def ref(self) -> RequestRef:
        return RequestRef(self.obj.namespace, self.obj.name, self.obj.uid)

    @property
    def key(self) -> RequestKey:
        return (self.obj.namespace, self.obj.name)

    @property
    def revoking(self) -> bool:
        return self.revoke is not None and not self.revoke.done()

    def vm_key(self) -> VmKey | None:
        """The VM this request's Azure state lives on, once it has one."""
        vm_id = self.status.azure.vm_id or (self.binding.vm_id if self.binding else "")
        return (self.obj.namespace, vm_id.lower()) if vm_id else None

    def spec(self) -> JitAccessRequestSpec | None:
        if self.binding is not None:
            return self.binding.spec
        try:
            return _parse(self.obj.spec)
        except SpecError:
            return None

    def wanted(self) -> list[tuple[int, str]]:
        spec = self.spec()
        return [(p.number, p.source_prefix.text) for p in spec.ports] if spec else []

    def claims(self) -> list[Claim]:
        """What this request holds on its VM: an Active grant, or the port reserved by an
        initiate that may have reached Azure (its intent is in the status)."""
        status = self.status
        if status.expires_at is None:
            return []
        if status.phase is Phase.ACTIVE:
            return [
                Claim(self.ref, p.number, p.source_prefix, status.expires_at) for p in status.ports
            ]
        if status.phase is Phase.PENDING and status.azure.initiation_id:
            return [Claim(self.ref, n, p, status.expires_at) for n, p in self.wanted()]
        return []

    def ports(self) -> list[int]:
        numbers = [p.number for p in self.status.ports]
        return numbers or [n for n, _ in self.wanted()]
