"""Users going through the operator's admission webhooks, with ``kubectl --as`` (what
``kubectl jit`` does, reduced to kubectl), and a log handler that collects every refusal the API
server gave the operator (403 Forbidden)."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from typing import Any

from azure_jit_operator.domain.timestamps import format_timestamp
from tests.support.controlplane import ControlPlane


def kubectl_as(
    plane: ControlPlane, namespace: str, user: str, *args: str, stdin: str | None = None
) -> tuple[int, str]:
    done = plane.kubectl(*args, "-n", namespace, f"--as={user}", input=stdin)
    return done.returncode, done.stdout + done.stderr


def create_as(
    plane: ControlPlane, namespace: str, user: str, manifest: dict[str, Any]
) -> tuple[int, str]:
    return kubectl_as(plane, namespace, user, "create", "-f", "-", stdin=json.dumps(manifest))


def decide_as(
    plane: ControlPlane,
    namespace: str,
    user: str,
    name: str,
    *,
    decision: str,
    now: datetime,
    current: list[dict[str, Any]] | None,
    reason: str = "",
) -> tuple[int, str]:
    """Append one's own decision to status.approvals (the status subresource), as
    ``kubectl jit approve|deny`` does; ``current`` is the list as read before."""
    entry = {"user": user, "decision": decision, "time": format_timestamp(now)}
    if reason:
        entry["reason"] = reason
    ops = (
        [{"op": "add", "path": "/status/approvals/-", "value": entry}]
        if current is not None
        else [{"op": "add", "path": "/status/approvals", "value": [entry]}]
    )
    return kubectl_as(
        plane,
        namespace,
        user,
        "patch",
        "jitaccessrequest",
        name,
        "--subresource=status",
        "--type=json",
        "-p",
        json.dumps(ops),
    )


# "Forbidden", or 403 as a number of its own (not inside a uid such as 1c0e-4035-...).
_REFUSED = re.compile(r"forbidden|(?<![\w-])403(?![\w-])", re.IGNORECASE)


class RefusalLog(logging.Handler):
    """Every log record that reports the API server refusing a request (403 Forbidden)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.refusals: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if _REFUSED.search(message):
            self.refusals.append(f"{record.name}: {message[:300]}")

    def __enter__(self) -> RefusalLog:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        logging.getLogger().removeHandler(self)
