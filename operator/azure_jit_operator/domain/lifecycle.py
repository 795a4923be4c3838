"""The JitAccessRequest state machine: phases, allowed transitions, terminal states.

::

    Pending --validate vs policy--> Denied                 terminal
    Pending --initiate on Azure---> Active (expiresAt set)
    Active  --expiresAt reached---> Expired (rule confirmed gone)   terminal
    Active  --request deleted-----> Revoked (rule deleted)          terminal
    Pending --request deleted-----> Revoked (nothing was opened)    terminal
    Pending --permanent error-----> Failed                          terminal

Active never goes to Failed: while a port may be open the operator keeps trying to close
it (the security invariant), it does not give up into a terminal state.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    PENDING = "Pending"
    ACTIVE = "Active"
    EXPIRED = "Expired"
    REVOKED = "Revoked"
    DENIED = "Denied"
    FAILED = "Failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Phase.EXPIRED, Phase.REVOKED, Phase.DENIED, Phase.FAILED})

TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.PENDING: frozenset({Phase.ACTIVE, Phase.DENIED, Phase.FAILED, Phase.REVOKED}),
    Phase.ACTIVE: frozenset({Phase.EXPIRED, Phase.REVOKED}),
    Phase.EXPIRED: frozenset(),
    Phase.REVOKED: frozenset(),
    Phase.DENIED: frozenset(),
    Phase.FAILED: frozenset(),
}


class TransitionError(ValueError):
    """A transition the state machine does not allow (a bug, never user input)."""


def parse_phase(text: str | None) -> Phase:
    """The phase recorded in status; an absent or unknown one is Pending."""
    try:
        return Phase(text) if text else Phase.PENDING
    except ValueError:
        return Phase.PENDING


def can_transition(current: Phase, target: Phase) -> bool:
    return current == target or target in TRANSITIONS[current]


def check_transition(current: Phase, target: Phase) -> Phase:
    if not can_transition(current, target):
        raise TransitionError(f"a request cannot go from {current} to {target}")
    return target
