"""Shared access to one VM port: what Azure should allow, given every live request.

Azure JIT keeps one grant per VM port: a newer initiate replaces the older one's allow
rule. So two requests for the same port must travel in one initiate. The grant carries the
union of the live requests' source prefixes and ends at the *earliest* of their expiries;
when that member leaves, the operator re-initiates for the rest. Azure's own endTimeUtc
therefore never keeps anyone's access past their own expiry, even while the operator is
down (the others then lose access early: fail closed, never open).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .prefixes import PrefixError, SourcePrefix, parse_prefix


@dataclass(frozen=True, slots=True, order=True)
class RequestRef:
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Claim:
    """One request's claim on one VM port: open to ``prefix`` until ``expires_at``."""

    request: RequestRef
    port: int
    prefix: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PortGrant:
    """What Azure should allow on one VM port right now."""

    port: int
    prefixes: tuple[str, ...]
    end: datetime
    members: tuple[RequestRef, ...]


def live_claims(claims: Iterable[Claim], *, now: datetime) -> tuple[Claim, ...]:
    return tuple(c for c in claims if c.expires_at > now)


def grant_for_port(claims: Iterable[Claim], port: int, *, now: datetime) -> PortGrant | None:
    """The grant the live claims on ``port`` need, or None when nobody may connect."""
    members = [c for c in live_claims(claims, now=now) if c.port == port]
    if not members:
        return None
    return PortGrant(
        port=port,
        prefixes=tuple(sorted({c.prefix for c in members})),
        end=min(c.expires_at for c in members),
        members=tuple(sorted({c.request for c in members})),
    )


def sources_beyond_grant(granted_sources: Iterable[str], grant: PortGrant | None) -> list[str]:
    """Sources an observed allow rule admits that the grant does not cover.

    A source is covered when it lies inside one of the grant's prefixes; with no grant,
    every observed source is beyond it.
    """
    allowed = tuple(parse_prefix(p) for p in grant.prefixes) if grant else ()
    beyond = []
    for source in granted_sources:
        parsed = _parsed_or_none(source)
        # A source we cannot read (e.g. a service tag) is never assumed covered.
        if parsed is None or not any(a.contains(parsed) for a in allowed):
            beyond.append(source)
    return beyond


def grant_is_served(granted_sources: Iterable[str], grant: PortGrant) -> bool:
    """True when the observed sources admit every prefix of the grant."""
    observed = [p for p in map(_parsed_or_none, granted_sources) if p is not None]
    return all(any(o.contains(parse_prefix(p)) for o in observed) for p in grant.prefixes)


def _parsed_or_none(text: str) -> SourcePrefix | None:
    try:
        return parse_prefix(text)
    except PrefixError:
        return None
