"""Plain views of our custom objects, decoded once by the handlers from kopf's bodies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure_jit_operator.domain.timestamps import parse_timestamp
from azure_jit_operator.kube.api import POLICIES, REQUESTS, ObjectRef
from azure_jit_operator.kube.events import ObjectIdentity

API_VERSION = "azurejit.dev/v1alpha1"


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
        )

    @property
    def identity(self) -> ObjectIdentity:
        return ObjectIdentity(API_VERSION, self.kind, self.namespace, self.name, self.uid)

    @property
    def ref(self) -> ObjectRef:
        plural = POLICIES if self.kind == "JitPolicy" else REQUESTS
        return ObjectRef(plural, self.namespace, self.name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"
