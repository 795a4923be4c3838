"""Shared access to one VM port: who holds it and what Azure should allow.

Azure JIT keeps one grant per VM port, and its initiate API carries exactly one source
prefix per port: a newer initiate replaces the older one's allow rule. So:

- requests from the *same* source share one grant; it ends at the latest member's expiry
  (the same source legitimately needs it until then), and is re-initiated with an earlier
  end when that member leaves early;
- a request from a *different* source waits until the port is free, rather than silently
  cutting the holder off (or being cut off by Azure later).

Azure's own endTimeUtc therefore never keeps a source open past the latest expiry of the
requests made for that source, even while the operator is down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .prefixes import PrefixError, SourcePrefix, canonical_prefix, parse_prefix


@dataclass(frozen=True, slots=True, order=True)
class RequestRef:
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Claim:
    """One request's claim on one VM port: open to ``prefix`` until ``expires_at``.

    ``prefix`` is kept in its canonical spelling, so claims compare by address, not text."""

    request: RequestRef
    port: int
    prefix: str
    expires_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", canonical_prefix(self.prefix))


@dataclass(frozen=True, slots=True)
class PortGrant:
    """What Azure should allow on one VM port right now."""

    port: int
    prefix: str
    end: datetime
    members: tuple[RequestRef, ...]


@dataclass(frozen=True, slots=True)
class PortBusy:
    """Why a claim must wait: the port is held for another source until ``until``."""

    port: int
    holder_prefix: str
    holders: tuple[RequestRef, ...]
    until: datetime


class InconsistentClaimsError(ValueError):
    """Live claims on one port disagree on the source (never created by the operator)."""


def live_claims(claims: Iterable[Claim], *, now: datetime) -> tuple[Claim, ...]:
    return tuple(c for c in claims if c.expires_at > now)


def grant_for_port(claims: Iterable[Claim], port: int, *, now: datetime) -> PortGrant | None:
    """The grant the live claims on ``port`` need, or None when nobody may connect."""
    members = [c for c in live_claims(claims, now=now) if c.port == port]
    if not members:
        return None
    prefixes = {c.prefix for c in members}
    if len(prefixes) > 1:
        raise InconsistentClaimsError(
            f"port {port} is claimed for several sources: {sorted(prefixes)}"
        )
    return PortGrant(
        port=port,
        prefix=members[0].prefix,
        end=max(c.expires_at for c in members),
        members=tuple(sorted({c.request for c in members})),
    )


def busy_ports(
    existing: Iterable[Claim], wanted: Iterable[Claim], *, now: datetime
) -> list[PortBusy]:
    """Ports of ``wanted`` held by other requests for a different source."""
    existing_live = live_claims(existing, now=now)
    busy = []
    for claim in wanted:
        holders = [
            c
            for c in existing_live
            if c.port == claim.port and c.prefix != claim.prefix and c.request != claim.request
        ]
        if holders:
            busy.append(
                PortBusy(
                    port=claim.port,
                    holder_prefix=holders[0].prefix,
                    holders=tuple(sorted({c.request for c in holders})),
                    until=max(c.expires_at for c in holders),
                )
            )
    return busy


def sources_beyond_grant(granted_sources: Iterable[str], grant: PortGrant | None) -> list[str]:
    """Sources an observed allow rule admits that the grant does not cover.

    With no grant, every observed source is beyond it.
    """
    allowed = parse_prefix(grant.prefix) if grant else None
    beyond = []
    for source in granted_sources:
        parsed = _parsed_or_none(source)
        # A source we cannot read (e.g. a service tag) is never assumed covered.
        if parsed is None or allowed is None or not allowed.contains(parsed):
            beyond.append(source)
    return beyond


def grant_is_served(granted_sources: Iterable[str], grant: PortGrant) -> bool:
    """True when an observed allow rule admits the grant's prefix."""
    return source_admitted(granted_sources, grant.prefix)


def source_admitted(granted_sources: Iterable[str], prefix: str) -> bool:
    """True when one of the observed sources admits every address of ``prefix``."""
    wanted = parse_prefix(prefix)
    return any(
        observed.contains(wanted)
        for observed in map(_parsed_or_none, granted_sources)
        if observed is not None
    )


def _parsed_or_none(text: str) -> SourcePrefix | None:
    try:
        return parse_prefix(text)
    except PrefixError:
        return None
