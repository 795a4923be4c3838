"""Plain views of our custom objects, decoded once by the handlers from kopf's bodies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure_jit_operator.domain.timestamps import parse_timestamp
from azure_jit_operator.kube.api import POLICIES, REQUESTS, SCHEDULES, ObjectRef
from azure_jit_operator.kube.events import ObjectIdentity

API_VERSION = "azurejit.dev/v1alpha1"
PLURALS = {"JitPolicy": POLICIES, "JitAccessRequest": REQUESTS, "JitAccessSchedule": SCHEDULES}


@dataclass(frozen=True, slots=True)
class ObjectView:
    kind: str
    namespace: str
    name: str
    uid: str
    generation: int
    created: datetime
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    deleting: bool = False
    annotations: Mapping[str, str] = field(default_factory=dict)
    # The controlling owner's (kind, name, uid), e.g. the JitAccessSchedule of a window's
    # request.
    controller: tuple[str, str, str] | None = None

    @classmethod
    def decode(cls, kind: str, body: Mapping[str, Any]) -> ObjectView:
        meta = body.get("metadata", {})
        return cls(
            kind=kind,
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
            generation=int(meta.get("generation", 1)),
            created=parse_timestamp(str(meta["creationTimestamp"])),
            spec=dict(body.get("spec") or {}),
            status=dict(body.get("status") or {}),
            deleting=bool(meta.get("deletionTimestamp")),
            annotations=dict(meta.get("annotations") or {}),
            controller=_controller(meta),
        )

    @property
    def identity(self) -> ObjectIdentity:
        return ObjectIdentity(API_VERSION, self.kind, self.namespace, self.name, self.uid)

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(PLURALS.get(self.kind, REQUESTS), self.namespace, self.name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def _controller(meta: Mapping[str, Any]) -> tuple[str, str, str] | None:
    for owner in meta.get("ownerReferences") or ():
        if isinstance(owner, Mapping) and owner.get("controller") is True:
            return str(owner.get("kind", "")), str(owner.get("name", "")), str(owner.get("uid"))
    return None
