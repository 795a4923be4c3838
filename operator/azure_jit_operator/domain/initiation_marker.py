"""Recognising the operator's own initiate in Azure's request history, exactly once.

An initiate may reach Azure although its answer is lost (a timeout, a crash). Before
initiating again the operator looks for its initiation id in the policy's ``requests``
history. Nobody has shown that Azure keeps the ``justification`` there (U1), but Azure
echoes ``endTimeUtc`` exactly, to 7 fractional digits (E7). So every initiate carries its id
twice: readable in the justification (``azurejit-<id>``, also for the Activity Log) and in
the sub-second digits of each port's end time (microseconds derived from the id).

The marked end lies in the second *before* ``expiresAt``: Azure's own revoke then comes up to
a second early, never late, and the end stays inside the policy's maximum duration.

When neither shows (the history may keep only a few entries, U7), the operator cannot tell;
it then looks at the NSG instead of initiating blindly (see ``RequestWorker``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta

from .azure_policy import InitiationRecord

MARKER_PREFIX = "azurejit-"


def marker_microseconds(initiation_id: str) -> int:
    """1..999,999, stable for one id (never 0: a whole second carries no marker)."""
    digest = hashlib.sha256(initiation_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 999_999 + 1


def marked_end(end: datetime, initiation_id: str) -> datetime:
    """``end`` (whole seconds) moved into its previous second, carrying the marker."""
    whole = end.replace(microsecond=0)
    return (whole - timedelta(seconds=1)).replace(microsecond=marker_microseconds(initiation_id))


def record_is_ours(
    record: InitiationRecord, initiation_id: str, *, vm_id: str, ports: Iterable[int]
) -> bool:
    """True when ``record`` is the initiate that carried ``initiation_id`` for these ports."""
    if f"{MARKER_PREFIX}{initiation_id}" in record.justification:
        return True
    micros = marker_microseconds(initiation_id)
    wanted = set(ports)
    return any(
        port.vm_id.lower() == vm_id.lower()
        and port.number in wanted
        and port.end_time is not None
        and port.end_time.microsecond == micros
        for port in record.ports
    )


def find_ours(
    history: Iterable[InitiationRecord], initiation_id: str, *, vm_id: str, ports: Iterable[int]
) -> InitiationRecord | None:
    numbers = tuple(ports)
    return next(
        (r for r in history if record_is_ours(r, initiation_id, vm_id=vm_id, ports=numbers)),
        None,
    )


def still_applying(
    history: Iterable[InitiationRecord], initiation_id: str, *, vm_id: str, ports: Iterable[int]
) -> bool:
    """True while one of this request's initiates for these ports is still ``Initiating`` in
    Azure's history (Azure applies initiates asynchronously, U2)."""
    wanted = set(ports)
    return any(
        port.number in wanted and port.status == "Initiating"
        for record in history
        if record_is_ours(record, initiation_id, vm_id=vm_id, ports=wanted)
        for port in record.ports
    )
