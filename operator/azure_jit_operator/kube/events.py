"""Kubernetes Events for our objects, posted through kopf's event queue (batched, async).

Events are the audit trail: every request transition says who/what/why. Messages are
bounded because Event messages are limited to 1 KiB by the API server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import kopf

MAX_MESSAGE = 1000


@dataclass(frozen=True, slots=True)
class ObjectIdentity:
    """Enough of an object to attach an Event to it."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def as_body(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {"namespace": self.namespace, "name": self.name, "uid": self.uid},
        }


def post_event(obj: ObjectIdentity, *, type_: str, reason: str, message: str) -> None:
    # kopf only reads apiVersion, kind and metadata from the body it is given.
    body: Any = obj.as_body()
    kopf.event(body, type=type_, reason=reason, message=message[:MAX_MESSAGE])
