"""The reconcile of one JitPolicy's key: a sync when its spec or reconcile-policy annotation
changed (or on start), a drift check otherwise, every drift interval. The status is written
only when something besides the sync time changed; Events only on transitions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from azure_jit_operator.kube.api import Gone
from azure_jit_operator.reconcile import exposure_check
from azure_jit_operator.reconcile.cache import Cache
from azure_jit_operator.reconcile.objects import ObjectView
from azure_jit_operator.reconcile.policies import (
    RECONCILE_POLICY_ANNOTATION,
    status_changed,
    sync_policy,
)
from azure_jit_operator.reconcile.runtime import Runtime

log = logging.getLogger("azure_jit_operator.policies")

PolicyKey = tuple[str, str]  # namespace, name


@dataclass(frozen=True, slots=True)
class Version:
    """What a sync answers for: a change of either means a fresh sync, not a drift check."""

    uid: str
    generation: int
    reconcile_policy: str

    @classmethod
    def of(cls, obj: ObjectView) -> Version:
        return cls(obj.uid, obj.generation, obj.annotations.get(RECONCILE_POLICY_ANNOTATION, ""))


@dataclass(slots=True)
class _Synced:
    version: Version | None = None  # the version the last successful sync answered
    attempt: int = 0  # failed syncs of the current version (for the back-off)


class PolicyReconciler:
    def __init__(self, rt: Runtime, cache: Cache) -> None:
        self.rt = rt
        self.cache = cache
        self._synced: dict[PolicyKey, _Synced] = {}

    def forget(self, key: PolicyKey | None = None) -> None:
        """Forget what the last syncs found (and the exposure series they published)."""
        if key is None:
            self._synced.clear()
            exposure_check.forget_all()
        else:
            self._synced.pop(key, None)
            exposure_check.forget(*key)

    def needs_sync(self, obj: ObjectView) -> bool:
        """Whether a watch event brought something a sync must answer (not our own status)."""
        synced = self._synced.get((obj.namespace, obj.name))
        return synced is None or synced.version != Version.of(obj)

    async def reconcile(self, key: PolicyKey) -> datetime | None:
        cached = self.cache.policy_objects.get(key)
        if cached is None or cached.deleting:
            return None  # gone, or its deletion handler has it
        try:
            # Fresh from the API, not the cache: the last sync's own status writes (the Azure
            # policy it owns) may not have come back through the watch yet.
            obj = ObjectView.decode("JitPolicy", await self.rt.kube.get(cached.ref))
        except Gone:
            return None
        if obj.deleting:
            return None
        synced = self._synced.setdefault(key, _Synced())
        version = Version.of(obj)
        if synced.version is not None and synced.version != version:
            synced.attempt = 0
        me = f"{obj.namespace}/{obj.name}"
        outcome = await sync_policy(
            self.rt,
            obj,
            governed_elsewhere=lambda what: self.cache.governed_elsewhere(me, what),
            drift_check=synced.version == version,
            attempt=synced.attempt,
        )
        if outcome.status and status_changed(obj.status, outcome.status):
            try:
                await self.rt.kube.patch_status(obj.ref, outcome.status)
            except Gone:
                return None
        for type_, reason, message in outcome.events:
            self.rt.post_event(obj.identity, type_, reason, message)
        now = self.rt.clock.now()
        if outcome.retry_in is not None:
            synced.attempt += 1
            return now + timedelta(seconds=outcome.retry_in)
        synced.version = version
        synced.attempt = 0
        every = self.rt.settings.drift_interval
        if outcome.check_again_in is not None:
            every = min(every, timedelta(seconds=outcome.check_again_in))
        return now + every
