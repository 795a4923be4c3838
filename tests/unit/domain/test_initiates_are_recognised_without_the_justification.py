"""The operator finds its own initiate in Azure's history by the marker in endTimeUtc alone
(Azure may not keep the justification, U1), and only its own."""

from datetime import UTC, datetime, timedelta

from azure_jit_operator.domain.azure_policy import InitiatedPort, InitiationRecord
from azure_jit_operator.domain.initiation_marker import (
    find_ours,
    marked_end,
    marker_microseconds,
    record_is_ours,
    still_applying,
)

VM = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-web-01"
EXPIRES = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


def record(
    end: datetime,
    *,
    justification: str = "",
    vm: str = VM,
    port: int = 22,
    status: str = "Initiated",
) -> InitiationRecord:
    return InitiationRecord(
        justification=justification,
        requestor="",
        start_time=EXPIRES - timedelta(hours=1),
        ports=(InitiatedPort(vm, port, ("198.51.100.7/32",), end, status, "UserRequested"),),
    )


def test_the_marked_end_is_in_the_second_before_expiry() -> None:
    end = marked_end(EXPIRES, "a1b2c3d4e5f6")
    assert EXPIRES - timedelta(seconds=1) < end < EXPIRES
    assert end.microsecond == marker_microseconds("a1b2c3d4e5f6")


def test_an_entry_without_justification_is_recognised_by_its_end_time() -> None:
    ours = record(marked_end(EXPIRES, "a1b2c3d4e5f6"))
    assert record_is_ours(ours, "a1b2c3d4e5f6", vm_id=VM.upper(), ports=[22])


def test_an_entry_with_the_justification_marker_is_recognised() -> None:
    ours = record(EXPIRES, justification="azurejit-a1b2c3d4e5f6 k8s:team/ssh: INC-1")
    assert record_is_ours(ours, "a1b2c3d4e5f6", vm_id=VM, ports=[22])


def test_other_initiates_are_not_taken_for_ours() -> None:
    history = [
        record(marked_end(EXPIRES, "ffffffffffff")),  # another request's
        record(EXPIRES),  # the portal's: whole seconds
        record(marked_end(EXPIRES, "a1b2c3d4e5f6"), port=3389),  # ours, another port
        record(marked_end(EXPIRES, "a1b2c3d4e5f6"), vm=VM.replace("01", "02")),
    ]
    assert marker_microseconds("ffffffffffff") != marker_microseconds("a1b2c3d4e5f6")
    assert find_ours(history, "a1b2c3d4e5f6", vm_id=VM, ports=[22]) is None


def test_markers_spread_over_the_second() -> None:
    ids = [f"{n:012x}" for n in range(2000)]
    assert len({marker_microseconds(i) for i in ids}) > 1990
    assert all(0 < marker_microseconds(i) < 1_000_000 for i in ids)


def test_only_our_own_initiate_still_being_applied_counts_as_applying() -> None:
    ours_applied = record(marked_end(EXPIRES, "a1b2c3d4e5f6"))
    ours_applying = record(marked_end(EXPIRES, "a1b2c3d4e5f6"), status="Initiating")
    theirs_applying = record(marked_end(EXPIRES, "ffffffffffff"), status="Initiating")
    assert not still_applying([ours_applied, theirs_applying], "a1b2c3d4e5f6", vm_id=VM, ports=[22])
    assert still_applying([ours_applied, ours_applying], "a1b2c3d4e5f6", vm_id=VM, ports=[22])
    assert not still_applying([ours_applying], "a1b2c3d4e5f6", vm_id=VM, ports=[3389])
