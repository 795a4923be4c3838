import pytest

from azure_jit_operator.domain.lifecycle import (
    TERMINAL,
    Phase,
    TransitionError,
    can_transition,
    check_transition,
    parse_phase,
)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Phase.PENDING, Phase.ACTIVE),
        (Phase.PENDING, Phase.DENIED),
        (Phase.PENDING, Phase.FAILED),
        (Phase.PENDING, Phase.REVOKED),
        (Phase.ACTIVE, Phase.EXPIRED),
        (Phase.ACTIVE, Phase.REVOKED),
    ],
    ids=str,
)
def test_the_documented_transitions_are_allowed(current: Phase, target: Phase) -> None:
    assert check_transition(current, target) is target


def test_an_open_request_never_gives_up_into_failed() -> None:
    # While a port may be open the operator keeps trying to close it.
    assert not can_transition(Phase.ACTIVE, Phase.FAILED)
    with pytest.raises(TransitionError, match="cannot go from Active to Failed"):
        check_transition(Phase.ACTIVE, Phase.FAILED)


@pytest.mark.parametrize("terminal", sorted(TERMINAL), ids=lambda p: f"{p} is final")
def test_terminal_phases_go_nowhere(terminal: Phase) -> None:
    assert terminal.is_terminal
    for target in Phase:
        assert can_transition(terminal, target) == (target == terminal)


def test_missing_or_unknown_phase_reads_as_pending() -> None:
    assert parse_phase(None) is Phase.PENDING
    assert parse_phase("Bogus") is Phase.PENDING
    assert parse_phase("Active") is Phase.ACTIVE
