"""The controller's in-memory cache of JitAccessRequests and JitPolicies, filled by one paged
LIST on start and kept current by kopf's watch events; indexed by VM and by policy.

Only the controller's reconciles change a request's status; what the cache takes from the
watch for a request it already tracks is the object itself (finalizers, deletion, approvals
written by approvers), never the status it wrote itself (a watch event may be older)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from azure_jit_operator.domain.extension import Predecessor
from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.domain.request_status import RequestStatus
from azure_jit_operator.reconcile.judge import PolicyView
from azure_jit_operator.reconcile.objects import ObjectView
from azure_jit_operator.reconcile.recorder import Recorder
from azure_jit_operator.reconcile.runtime import Runtime
from azure_jit_operator.reconcile.tracked import RequestKey, Tracked, VmKey

FINALIZER = "azurejit.dev/finalizer"
# Written by others than the operator's reconciles (approvers, reviewers) or by a separate
# patch (extendedBy, and ``approval``: the audit cursor and when approvers were notified):
# the only parts of a watched status the cache keeps.
KEPT_STATUS = ("approvals", "reviews", "extendedBy", "approval")
# Extensions in these phases no longer hold their predecessor's one extension slot.
_GAVE_UP = frozenset({Phase.DENIED, Phase.FAILED, Phase.REVOKED})


def _version(body: Mapping[str, Any]) -> int:
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class Cache:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self.requests: dict[RequestKey, Tracked] = {}
        self.policies: dict[tuple[str, str], PolicyView] = {}
        self._versions: dict[RequestKey, int] = {}
        self._on_vm: dict[VmKey, set[RequestKey]] = {}
        self._placed: dict[RequestKey, VmKey] = {}
        self._by_policy: dict[tuple[str, str], set[RequestKey]] = {}
        self._extensions: dict[RequestKey, set[RequestKey]] = {}  # predecessor -> extensions
        self.policy_objects: dict[tuple[str, str], ObjectView] = {}
        # Who governs which Azure policy / VM port: key -> {(rank, created, "ns/name")}.
        self._governance: dict[str, set[tuple[int, str, str]]] = {}
        self._governs: dict[tuple[str, str], list[tuple[str, tuple[int, str, str]]]] = {}
        # JitAccessSchedules (whole objects: their status holds the approvals the judge
        # reads) and the requests each one controls.
        self.schedules: dict[tuple[str, str], ObjectView] = {}
        self._owned: dict[tuple[str, str], set[RequestKey]] = {}
        self._schedule_versions: dict[tuple[str, str], int] = {}

    def clear(self) -> None:
        self.requests.clear()
        self.policies.clear()
        self._versions.clear()
        self._on_vm.clear()
        self._placed.clear()
        self._by_policy.clear()
        self._extensions.clear()
        self.policy_objects.clear()
        self._governance.clear()
        self._governs.clear()
        self.schedules.clear()
        self._owned.clear()
        self._schedule_versions.clear()

    # -- requests --------------------------------------------------------------------

    def put_request(self, body: Mapping[str, Any], *, now: datetime) -> Tracked | None:
        """Take a request body from a LIST or a watch event; None when it is older than the
        one already known (a LIST page racing the watch)."""
        decoded = ObjectView.decode("JitAccessRequest", body)
        # Kept per request for as long as it lives: only what the reconciles read (the status
        # they wrote is the recorder's; of the live one only approvers' decisions matter).
        kept = {k: decoded.status[k] for k in KEPT_STATUS if decoded.status.get(k)}
        obj = replace(decoded, annotations={}, status=kept)
        key = (obj.namespace, obj.name)
        version = _version(body)
        known = self.requests.get(key)
        if known is not None and known.obj.uid == obj.uid:
            if version and version < self._versions.get(key, 0):
                return None
            known.obj = obj
            known.recorder.obj = obj
            known.finalized = FINALIZER in _finalizers(body)
            self._versions[key] = version
            return known
        tracked = Tracked(
            obj=obj,
            recorder=Recorder(self._rt, obj, RequestStatus.from_dict(decoded.status)),
            finalized=FINALIZER in _finalizers(body),
            first_seen=now,
        )
        if known is not None:
            self.remove_request(key)  # same name, new object
        self.requests[key] = tracked
        self._versions[key] = version
        policy = str(obj.spec.get("policyName", ""))
        self._by_policy.setdefault((obj.namespace, policy), set()).add(key)
        owner = _schedule_of(obj)
        if owner is not None:
            self._owned.setdefault(owner, set()).add(key)
        extends = obj.spec.get("extends")
        if isinstance(extends, str) and extends:
            self._extensions.setdefault((obj.namespace, extends), set()).add(key)
        self.place(tracked)
        return tracked

    def remove_request(self, key: RequestKey) -> Tracked | None:
        tracked = self.requests.pop(key, None)
        self._versions.pop(key, None)
        self._unplace(key)
        if tracked is not None:
            owner = _schedule_of(tracked.obj)
            owned = self._owned.get(owner, set()) if owner is not None else set()
            owned.discard(key)
            if owner is not None and not owned:
                self._owned.pop(owner, None)
            policy = (tracked.obj.namespace, str(tracked.obj.spec.get("policyName", "")))
            members = self._by_policy.get(policy)
            if members is not None:
                members.discard(key)
                if not members:
                    del self._by_policy[policy]
            extends = tracked.obj.spec.get("extends")
            if isinstance(extends, str) and extends:
                chain = self._extensions.get((tracked.obj.namespace, extends))
                if chain is not None:
                    chain.discard(key)
                    if not chain:
                        del self._extensions[(tracked.obj.namespace, extends)]
        return tracked

    def place(self, tracked: Tracked) -> VmKey | None:
        """Index the request under the VM its Azure state lives on (after a status write or a
        binding changed it); returns that VM."""
        vm = tracked.vm_key()
        if self._placed.get(tracked.key) == vm:
            return vm
        self._unplace(tracked.key)
        if vm is not None:
            self._placed[tracked.key] = vm
            self._on_vm.setdefault(vm, set()).add(tracked.key)
        return vm

    def _unplace(self, key: RequestKey) -> None:
        vm = self._placed.pop(key, None)
        if vm is None:
            return
        members = self._on_vm.get(vm)
        if members is not None:
            members.discard(key)
            if not members:
                del self._on_vm[vm]

    def on_vm(self, vm: VmKey) -> list[Tracked]:
        keys = self._on_vm.get(vm, ())
        found = [self.requests[k] for k in keys if k in self.requests]
        return sorted(found, key=lambda t: (t.obj.created, t.obj.name))

    def placed(self, key: RequestKey) -> VmKey | None:
        return self._placed.get(key)

    # -- extension chains (the judge's ChainLookup) ----------------------------------

    def predecessor(self, namespace: str, name: str) -> Predecessor | None:
        tracked = self.requests.get((namespace, name))
        if tracked is None:
            return None
        status = tracked.status
        # A request being deleted is being revoked: nobody extends it any more.
        deleting = tracked.revoking or tracked.obj.deleting
        return Predecessor(
            name=name,
            phase=Phase.REVOKED if deleting else status.phase,
            spec=tracked.spec(),
            start_time=status.start_time,
            expires_at=status.expires_at,
            chain_start=status.chain_start,
        )

    def extensions_of(self, namespace: str, name: str) -> list[Tracked]:
        """The live requests extending ``namespace/name``, oldest first."""
        keys = self._extensions.get((namespace, name), ())
        found = [
            self.requests[k]
            for k in keys
            if k in self.requests and self.requests[k].status.phase not in _GAVE_UP
        ]
        return sorted(found, key=lambda t: (t.obj.created, t.obj.name))

    def first_extension(self, namespace: str, name: str) -> str | None:
        found = self.extensions_of(namespace, name)
        return found[0].obj.name if found else None

    def waiting_on_policy(self, namespace: str, name: str) -> list[Tracked]:
        keys = self._by_policy.get((namespace, name), ())
        return [self.requests[k] for k in keys if k in self.requests]

    # -- policies --------------------------------------------------------------------

    def put_policy(
        self,
        body: Mapping[str, Any],
        view: PolicyView,
        governs: list[tuple[str, tuple[int, str, str]]],
    ) -> ObjectView:
        obj = ObjectView.decode("JitPolicy", body)
        key = (obj.namespace, obj.name)
        self.policies[key] = view
        self.policy_objects[key] = obj
        self._ungovern(key)
        self._governs[key] = governs
        for what, holder in governs:
            self._governance.setdefault(what, set()).add(holder)
        return obj

    def remove_policy(self, namespace: str, name: str) -> None:
        self.policies.pop((namespace, name), None)
        self.policy_objects.pop((namespace, name), None)
        self._ungovern((namespace, name))

    def _ungovern(self, key: tuple[str, str]) -> None:
        for what, holder in self._governs.pop(key, ()):
            holders = self._governance.get(what)
            if holders is not None:
                holders.discard(holder)
                if not holders:
                    del self._governance[what]

    def governed_elsewhere(self, me: str, what: str) -> str | None:
        """The JitPolicy ("ns/name") that governs ``what`` if it is not ``me``."""
        holders = sorted(self._governance.get(what, ()))
        return holders[0][-1] if holders and holders[0][-1] != me else None

    def policy(self, namespace: str, name: str) -> PolicyView | None:
        return self.policies.get((namespace, name))

    # -- schedules -------------------------------------------------------------------

    def put_schedule(self, body: Mapping[str, Any]) -> ObjectView | None:
        """Take a schedule from a LIST or a watch event; None when older than the known one."""
        obj = ObjectView.decode("JitAccessSchedule", body)
        key = (obj.namespace, obj.name)
        known = self.schedules.get(key)
        version = _version(body)
        if (
            known is not None
            and known.uid == obj.uid
            and version
            and version < self._schedule_versions.get(key, 0)
        ):
            return None
        self.schedules[key] = obj
        self._schedule_versions[key] = version
        return obj

    def remove_schedule(self, namespace: str, name: str) -> None:
        self.schedules.pop((namespace, name), None)
        self._schedule_versions.pop((namespace, name), None)

    def schedule(self, namespace: str, name: str) -> ObjectView | None:
        return self.schedules.get((namespace, name))

    def owned_by(self, namespace: str, schedule: str) -> list[Tracked]:
        """The requests the schedule controls, oldest first."""
        keys = self._owned.get((namespace, schedule), ())
        found = [self.requests[k] for k in keys if k in self.requests]
        return sorted(found, key=lambda t: (t.obj.created, t.obj.name))


def _finalizers(body: Mapping[str, Any]) -> list[str]:
    return list((body.get("metadata") or {}).get("finalizers") or ())


def _schedule_of(obj: ObjectView) -> tuple[str, str] | None:
    if obj.controller is not None and obj.controller[0] == "JitAccessSchedule":
        return obj.namespace, obj.controller[1]
    return None
