"""Requests for one VM port share a grant only when they share the source; otherwise the
later one waits instead of silently cutting the holder off."""

from datetime import UTC, datetime, timedelta

import pytest

from azure_jit_operator.domain.grants import (
    Claim,
    InconsistentClaimsError,
    PortBusy,
    RequestRef,
    busy_ports,
    grant_for_port,
    grant_is_served,
    sources_beyond_grant,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ALICE = RequestRef("team-web", "alice-ssh", "uid-a")
ALICE_AGAIN = RequestRef("team-web", "alice-ssh-2", "uid-a2")
BOB = RequestRef("team-web", "bob-ssh", "uid-b")


def claim(who: RequestRef, prefix: str, minutes: int, port: int = 22) -> Claim:
    return Claim(request=who, port=port, prefix=prefix, expires_at=NOW + timedelta(minutes=minutes))


def test_one_request_gets_its_own_prefix_until_its_own_expiry() -> None:
    grant = grant_for_port([claim(ALICE, "198.51.100.7/32", 60)], 22, now=NOW)
    assert grant is not None
    assert (grant.prefix, grant.end, grant.members) == (
        "198.51.100.7/32",
        NOW + timedelta(minutes=60),
        (ALICE,),
    )


def test_requests_from_the_same_source_share_one_grant_until_the_latest_expiry() -> None:
    claims = [claim(ALICE, "198.51.100.7/32", 30), claim(ALICE_AGAIN, "198.51.100.7/32", 60)]
    grant = grant_for_port(claims, 22, now=NOW)
    assert grant is not None
    assert (grant.end, grant.members) == (NOW + timedelta(minutes=60), (ALICE, ALICE_AGAIN))


def test_when_the_later_member_leaves_early_the_grant_ends_with_the_remaining_one() -> None:
    remaining = [claim(ALICE, "198.51.100.7/32", 30)]
    grant = grant_for_port(remaining, 22, now=NOW + timedelta(minutes=5))
    assert grant is not None
    assert grant.end == NOW + timedelta(minutes=30)


def test_a_request_from_another_source_waits_and_is_told_who_holds_the_port() -> None:
    existing = [claim(ALICE, "198.51.100.7/32", 45)]
    assert busy_ports(existing, [claim(BOB, "203.0.113.9/32", 60)], now=NOW) == [
        PortBusy(
            port=22,
            holder_prefix="198.51.100.7/32",
            holders=(ALICE,),
            until=NOW + timedelta(minutes=45),
        )
    ]


def test_the_same_source_or_another_port_or_an_expired_holder_never_waits() -> None:
    existing = [claim(ALICE, "198.51.100.7/32", 45), claim(BOB, "203.0.113.9/32", 10, port=443)]
    assert busy_ports(existing, [claim(ALICE_AGAIN, "198.51.100.7/32", 60)], now=NOW) == []
    assert busy_ports(existing, [claim(BOB, "203.0.113.9/32", 60, port=8443)], now=NOW) == []
    assert (
        busy_ports(existing, [claim(BOB, "203.0.113.9/32", 60)], now=NOW + timedelta(minutes=45))
        == []
    )


def test_no_live_claim_means_no_grant() -> None:
    claims = [claim(ALICE, "198.51.100.7/32", 10)]
    assert grant_for_port(claims, 22, now=NOW + timedelta(minutes=10)) is None
    assert grant_for_port(claims, 443, now=NOW) is None


def test_claims_for_two_sources_on_one_port_are_refused_as_inconsistent() -> None:
    with pytest.raises(InconsistentClaimsError, match="several sources"):
        grant_for_port(
            [claim(ALICE, "198.51.100.7/32", 30), claim(BOB, "203.0.113.9/32", 30)], 22, now=NOW
        )


def test_sources_outside_the_grant_are_found_for_closing() -> None:
    grant = grant_for_port([claim(ALICE, "198.51.100.0/24", 60)], 22, now=NOW)
    assert sources_beyond_grant(["198.51.100.7", "203.0.113.9/32", "Internet", "*"], grant) == [
        "203.0.113.9/32",
        "Internet",
        "*",
    ]
    assert sources_beyond_grant(["198.51.100.7"], None) == ["198.51.100.7"]


def test_a_grant_is_served_when_an_observed_rule_admits_its_prefix() -> None:
    grant = grant_for_port([claim(ALICE, "198.51.100.7/32", 60)], 22, now=NOW)
    assert grant is not None
    assert grant_is_served(["198.51.100.7"], grant)
    assert grant_is_served(["*"], grant)
    assert not grant_is_served(["203.0.113.9", "VirtualNetwork"], grant)


@pytest.mark.parametrize(
    "spelling",
    ["198.51.100.7", "198.51.100.7/32", "::ffff:198.51.100.7", "::ffff:198.51.100.7/128"],
)
def test_every_spelling_of_one_address_shares_the_grant_without_waiting(spelling: str) -> None:
    holder = claim(ALICE, "198.51.100.7/32", 60)
    newcomer = claim(ALICE_AGAIN, spelling, 90)
    assert busy_ports([holder], [newcomer], now=NOW) == []
    grant = grant_for_port([holder, newcomer], 22, now=NOW)
    assert grant is not None
    assert grant.prefix == "198.51.100.7/32"
    assert grant.members == (ALICE, ALICE_AGAIN)


def test_a_mapped_network_is_the_ipv4_network_it_maps() -> None:
    holder = claim(ALICE, "198.51.100.0/24", 60)
    assert busy_ports([holder], [claim(BOB, "::ffff:198.51.100.0/120", 60)], now=NOW) == []
    assert claim(BOB, "::ffff:198.51.100.0/120", 60).prefix == "198.51.100.0/24"
