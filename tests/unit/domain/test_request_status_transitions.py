"""Conditions per phase (kstatus + Argo CD health), and Events only on transitions."""

from datetime import UTC, datetime, timedelta

import pytest

from azure_jit_operator.domain.conditions import find
from azure_jit_operator.domain.lifecycle import Phase, TransitionError
from azure_jit_operator.domain.request_status import (
    PortState,
    RequestStatus,
    enter,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def conditions_of(status: RequestStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_pending_is_reconciling_and_not_ready() -> None:
    step = enter(RequestStatus(), Phase.PENDING, reason="WaitingForPolicy", message="m", now=NOW)
    assert conditions_of(step.status) == {
        "Ready": ("False", "WaitingForPolicy"),
        "Reconciling": ("True", "WaitingForPolicy"),
    }
    assert step.event_type == "Normal"


def test_active_is_ready_and_open_and_no_longer_reconciling() -> None:
    pending = enter(RequestStatus(), Phase.PENDING, reason="Initiating", message="", now=NOW).status
    step = enter(pending, Phase.ACTIVE, reason="Opened", message="open", now=NOW)
    assert conditions_of(step.status) == {"Ready": ("True", "Opened"), "Open": ("True", "Opened")}


def test_expiry_keeps_ready_and_closes_open() -> None:
    active = enter(RequestStatus(), Phase.ACTIVE, reason="Opened", message="", now=NOW).status
    step = enter(
        active, Phase.EXPIRED, reason="Expired", message="closed", now=NOW + timedelta(hours=1)
    )
    assert conditions_of(step.status) == {
        "Ready": ("True", "Expired"),
        "Open": ("False", "Expired"),
    }
    opened = find(step.status.conditions, "Open")
    assert opened is not None
    assert opened.last_transition_time == "2026-11-23T11:00:00Z"


@pytest.mark.parametrize(
    ("phase", "reason"),
    [(Phase.DENIED, "PortNotInPolicy"), (Phase.FAILED, "AzureForbidden")],
    ids=["a denial stalls with a warning", "a failure stalls with a warning"],
)
def test_unsuccessful_ends_are_stalled_warnings(phase: Phase, reason: str) -> None:
    step = enter(RequestStatus(), phase, reason=reason, message="why", now=NOW)
    conditions = conditions_of(step.status)
    assert conditions["Ready"] == ("False", reason)
    assert conditions["Stalled"] == ("True", reason)
    assert "Reconciling" not in conditions
    assert step.event_type == "Warning"
    assert (phase is Phase.DENIED) == ("Denied" in conditions)


def test_repeating_the_same_state_emits_no_event() -> None:
    first = enter(RequestStatus(), Phase.PENDING, reason="WaitingForPort", message="a", now=NOW)
    again = enter(first.status, Phase.PENDING, reason="WaitingForPort", message="b", now=NOW)
    assert again.event_type is None
    assert again.status.message == "b"


def test_illegal_transitions_are_refused() -> None:
    expired = enter(RequestStatus(), Phase.ACTIVE, reason="Opened", message="", now=NOW).status
    expired = enter(expired, Phase.EXPIRED, reason="Expired", message="", now=NOW).status
    with pytest.raises(TransitionError):
        enter(expired, Phase.ACTIVE, reason="Opened", message="", now=NOW)


def test_status_round_trips_through_its_kubernetes_form() -> None:
    step = enter(
        RequestStatus(),
        Phase.ACTIVE,
        reason="Opened",
        message="open",
        now=NOW,
        start_time=NOW,
        expires_at=NOW + timedelta(hours=1),
        ports=(PortState(22, "198.51.100.7/32", "Open"),),
    )
    raw = step.status.to_dict(generation=1)
    assert raw["expiresAt"] == "2026-11-23T11:00:00Z"
    assert raw["observedGeneration"] == 1
    assert RequestStatus.from_dict(raw) == step.status
