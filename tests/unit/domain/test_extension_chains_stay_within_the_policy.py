"""Extensions (spec.extends): the predecessor must be Active, asked for the same, and extended
once; the whole chain's span stays within the port's maximum."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from azure_jit_operator.domain.extension import (
    Link,
    NotYet,
    Predecessor,
    chain_room,
    check_extension,
)
from azure_jit_operator.domain.lifecycle import Phase
from azure_jit_operator.domain.request_rules import Denial
from azure_jit_operator.domain.specs import (
    JitAccessRequestSpec,
    parse_policy_spec,
    parse_request_spec,
)
from tests.support.manifests import policy_spec, port_rule, request_spec

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
POLICY = parse_policy_spec(
    policy_spec(vms={"vm-web-01": [port_rule(22, max_duration="2h"), port_rule(3389)]}),
    name="web-admins",
)


def spec(
    duration: str = "30m", *, ports: list[tuple[int, str]] | None = None, vm: str = "vm-web-01"
) -> JitAccessRequestSpec:
    raw = request_spec(duration=duration, ports=ports, vm=vm)
    raw["extends"] = "ssh"
    return parse_request_spec(raw)


ACTIVE = Predecessor(
    name="ssh",
    phase=Phase.ACTIVE,
    spec=parse_request_spec(request_spec(duration="1h")),
    start_time=T0,
    expires_at=T0 + timedelta(hours=1),
    chain_start=None,
)


def judge(
    extension: JitAccessRequestSpec | None = None,
    predecessor: Predecessor | None = ACTIVE,
    *,
    first: str | None = None,
    now: datetime = T0 + timedelta(minutes=50),
) -> Denial | NotYet | Link:
    return check_extension(
        extension or spec(),
        predecessor,
        POLICY,
        request_name="ssh-more",
        first_extension=first,
        now=now,
    )


def test_an_extension_of_an_active_request_ends_its_duration_after_the_predecessor() -> None:
    assert judge() == Link("ssh", chain_start=T0, ends_at=T0 + timedelta(minutes=90))


def test_an_extension_of_an_extension_counts_from_the_first_start() -> None:
    second = replace(
        ACTIVE,
        start_time=T0 + timedelta(minutes=50),
        expires_at=T0 + timedelta(minutes=90),
        chain_start=T0,
    )
    link = judge(spec("30m"), second, now=T0 + timedelta(minutes=80))
    assert link == Link("ssh", chain_start=T0, ends_at=T0 + timedelta(hours=2))
    too_much = judge(spec("31m"), second, now=T0 + timedelta(minutes=80))
    assert isinstance(too_much, Denial)
    assert too_much.reason == "ChainExceedsMaximum"
    assert "at most 30m more is possible" in too_much.message


@pytest.mark.parametrize(
    ("phase", "now", "words"),
    [
        (Phase.EXPIRED, T0 + timedelta(hours=2), "ssh is Expired"),
        (Phase.REVOKED, T0 + timedelta(minutes=30), "ssh is Revoked"),
        (Phase.DENIED, T0, "ssh is Denied"),
    ],
    ids=[
        "an expired request is not re-opened",
        "a revoked request is not re-opened",
        "a denied request is not extended",
    ],
)
def test_a_finished_predecessor_is_not_extended(phase: Phase, now: datetime, words: str) -> None:
    denial = judge(predecessor=replace(ACTIVE, phase=phase), now=now)
    assert isinstance(denial, Denial)
    assert denial.reason == "PredecessorFinished"
    assert words in denial.message


def test_an_active_request_past_its_expiry_is_closing_and_not_extended() -> None:
    closing = judge(now=T0 + timedelta(hours=1))
    assert isinstance(closing, NotYet)
    assert "reached its expiry at 2026-11-23T11:00:00Z" in closing.message


def test_a_missing_predecessor_is_named() -> None:
    denial = judge(predecessor=None)
    assert isinstance(denial, Denial)
    assert denial.reason == "PredecessorNotFound"


def test_a_second_extension_is_pointed_to_the_first() -> None:
    denial = judge(first="ssh-earlier")
    assert isinstance(denial, Denial)
    assert denial.reason == "AlreadyExtended"
    assert "kubectl jit extend ssh-earlier" in denial.message


def test_being_the_first_extension_is_fine() -> None:
    assert isinstance(judge(first="ssh-more"), Link)


@pytest.mark.parametrize(
    ("extension", "words"),
    [
        (spec(ports=[(22, "198.51.100.8/32")]), "ports are 22 from 198.51.100.8/32"),
        (spec(ports=[(22, "198.51.100.7/32"), (3389, "198.51.100.7/32")]), "ports are 22"),
        (spec(vm="vm-web-02"), "virtualMachine is 'vm-web-02'"),
    ],
    ids=["another source", "another port too", "another VM"],
)
def test_an_extension_asks_for_exactly_what_its_predecessor_holds(
    extension: JitAccessRequestSpec, words: str
) -> None:
    denial = judge(extension)
    assert isinstance(denial, Denial)
    assert denial.reason == "ExtensionMismatch"
    assert words in denial.message


def test_the_same_address_written_differently_is_the_same_source() -> None:
    assert isinstance(judge(spec(ports=[(22, "198.51.100.7")])), Link)


def test_an_extension_of_a_pending_request_waits_for_it_to_open() -> None:
    pending = replace(ACTIVE, phase=Phase.PENDING, start_time=None, expires_at=None)
    assert isinstance(judge(predecessor=pending, now=T0), NotYet)


def test_the_room_left_in_a_chain_is_what_the_tightest_port_allows() -> None:
    assert chain_room(
        spec(), POLICY, start=T0, predecessor_end=T0 + timedelta(minutes=90)
    ) == timedelta(minutes=30)
    assert chain_room(spec(), POLICY, start=T0, predecessor_end=T0 + timedelta(hours=3)) == (
        timedelta(0)
    )
