"""When a close past ``expiresAt`` must stop waiting for Azure and delete the rule itself.

Azure removes an expired JIT allow rule on its own, but nobody has shown how soon (U4 in
``azure-evidence.md``). The operator therefore gives Azure part of the close grace and then
deletes the rule: a DELETE that is a long-running operation (202, Retry-After, polls),
followed by a confirming NSG read. That path takes seconds, so it must *start* early enough
to end inside the grace. How long it takes is measured on every forced close and kept per
subscription (the worst of the last few, so one slow delete makes the next closes start
earlier rather than later); before anything was measured, a conservative prior is used.

The operator accepts no grace shorter than ``MIN_CLOSE_GRACE``: a close that starts at
``expiresAt`` must fit ``SAFETY`` times the prior into it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# What a forced close (delete LRO + confirming read) is assumed to take before one was
# measured. The emulator takes ~1-2 s; real Azure is unmeasured (U4), hence the margin.
PRIOR_CLOSE_SECONDS = 5.0
# The grace left when the delete starts must cover this many times the estimate.
SAFETY = 2.0
SAMPLES = 20
MIN_CLOSE_GRACE = timedelta(seconds=SAFETY * PRIOR_CLOSE_SECONDS)


def force_close_at(expires_at: datetime, grace: timedelta, estimate_seconds: float) -> datetime:
    """The moment to delete a rule Azure has not removed: half-way through the grace (time
    for Azure's own revoke), or earlier when the grace left would not cover ``SAFETY`` times
    what a close takes, and never before ``expires_at``."""
    half = grace.total_seconds() / 2
    latest_safe = grace.total_seconds() - SAFETY * estimate_seconds
    return expires_at + timedelta(seconds=max(0.0, min(half, latest_safe)))


@dataclass(slots=True)
class CloseTimings:
    """Measured durations of forced closes, per key (the subscription id, case-folded)."""

    _samples: dict[str, deque[float]] = field(default_factory=dict)

    def record(self, key: str, seconds: float) -> None:
        samples = self._samples.setdefault(key.lower(), deque(maxlen=SAMPLES))
        samples.append(max(0.0, seconds))

    def estimate(self, key: str) -> float:
        """The worst recent close for ``key``, or the prior when none was measured."""
        samples = self._samples.get(key.lower())
        return max(samples) if samples else PRIOR_CLOSE_SECONDS
