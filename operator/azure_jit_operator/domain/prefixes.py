"""Source address prefixes: parsing and containment.

Azure JIT accepts ``*`` (any source), a single IP address, or a CIDR range. An IP address
is treated as a host prefix (/32 or /128) so containment is one rule.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

ANY = "*"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class PrefixError(ValueError):
    """A prefix that is neither ``*``, an IP address nor a CIDR range."""


@dataclass(frozen=True, slots=True)
class SourcePrefix:
    """A parsed prefix; ``network`` is None for ``*``."""

    text: str
    network: Network | None

    @property
    def is_any(self) -> bool:
        return self.network is None

    def contains(self, other: SourcePrefix) -> bool:
        """True when every address of ``other`` lies inside this prefix."""
        if self.network is None:
            return True
        if other.network is None:
            return False
        if self.network.version != other.network.version:
            return False
        return other.network.subnet_of(self.network)  # type: ignore[arg-type]


def parse_prefix(text: str) -> SourcePrefix:
    """Parse ``*``, ``198.51.100.7`` or ``198.51.100.0/24`` (host bits must be zero)."""
    if text == ANY:
        return SourcePrefix(text=text, network=None)
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise PrefixError(
            f"invalid source address prefix {text!r}: use '*', an IP address such as "
            f"198.51.100.7, or a CIDR range such as 198.51.100.0/24 ({exc})"
        ) from None
    return SourcePrefix(text=text, network=network)


def contained_in_any(prefix: SourcePrefix, allowed: tuple[SourcePrefix, ...]) -> bool:
    """True when ``prefix`` lies inside at least one of ``allowed``."""
    return any(candidate.contains(prefix) for candidate in allowed)
