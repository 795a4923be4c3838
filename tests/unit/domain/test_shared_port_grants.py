"""Two requests for one VM port share one Azure grant that never outlives any member."""

from datetime import UTC, datetime, timedelta

from azure_jit_operator.domain.grants import (
    Claim,
    RequestRef,
    grant_for_port,
    grant_is_served,
    sources_beyond_grant,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ALICE = RequestRef("team-web", "alice-ssh", "uid-a")
BOB = RequestRef("team-web", "bob-ssh", "uid-b")


def claim(who: RequestRef, prefix: str, minutes: int, port: int = 22) -> Claim:
    return Claim(request=who, port=port, prefix=prefix, expires_at=NOW + timedelta(minutes=minutes))


def test_one_request_gets_its_own_prefix_until_its_own_expiry() -> None:
    grant = grant_for_port([claim(ALICE, "198.51.100.7/32", 60)], 22, now=NOW)
    assert grant is not None
    assert (grant.prefixes, grant.end, grant.members) == (
        ("198.51.100.7/32",),
        NOW + timedelta(minutes=60),
        (ALICE,),
    )


def test_two_requests_share_one_grant_that_ends_at_the_earliest_expiry() -> None:
    grant = grant_for_port(
        [claim(ALICE, "198.51.100.7/32", 60), claim(BOB, "203.0.113.9/32", 30)], 22, now=NOW
    )
    assert grant is not None
    assert grant.prefixes == ("198.51.100.7/32", "203.0.113.9/32")
    assert grant.end == NOW + timedelta(minutes=30)
    assert grant.members == (ALICE, BOB)


def test_when_the_earliest_member_expires_the_grant_narrows_to_the_rest() -> None:
    claims = [claim(ALICE, "198.51.100.7/32", 60), claim(BOB, "203.0.113.9/32", 30)]
    grant = grant_for_port(claims, 22, now=NOW + timedelta(minutes=30))
    assert grant is not None
    assert (grant.prefixes, grant.end) == (("198.51.100.7/32",), NOW + timedelta(minutes=60))


def test_no_live_claim_means_no_grant() -> None:
    claims = [claim(ALICE, "198.51.100.7/32", 10)]
    assert grant_for_port(claims, 22, now=NOW + timedelta(minutes=10)) is None
    assert grant_for_port(claims, 443, now=NOW) is None


def test_claims_on_other_ports_do_not_join_the_grant() -> None:
    grant = grant_for_port(
        [claim(ALICE, "198.51.100.7/32", 60), claim(BOB, "203.0.113.9/32", 5, port=443)],
        22,
        now=NOW,
    )
    assert grant is not None
    assert grant.members == (ALICE,)


def test_sources_outside_the_grant_are_found_for_closing() -> None:
    grant = grant_for_port([claim(ALICE, "198.51.100.0/24", 60)], 22, now=NOW)
    assert sources_beyond_grant(["198.51.100.7", "203.0.113.9/32", "Internet", "*"], grant) == [
        "203.0.113.9/32",
        "Internet",
        "*",
    ]
    assert sources_beyond_grant(["198.51.100.7"], None) == ["198.51.100.7"]


def test_a_grant_is_served_only_when_every_member_prefix_is_admitted() -> None:
    grant = grant_for_port(
        [claim(ALICE, "198.51.100.7/32", 60), claim(BOB, "203.0.113.9/32", 30)], 22, now=NOW
    )
    assert grant is not None
    assert grant_is_served(["198.51.100.7", "203.0.113.9"], grant)
    assert not grant_is_served(["198.51.100.7"], grant)
    assert grant_is_served(["*"], grant)
