"""Source address prefixes: parsing and containment.

Azure JIT accepts ``*`` (any source), a single IP address, or a CIDR range. An IP address
is treated as a host prefix (/32 or /128) so containment is one rule.

Every prefix has one spelling, made here and nowhere else: ``198.51.100.7``,
``198.51.100.7/32`` and ``::ffff:198.51.100.7`` are one source, written ``198.51.100.7/32``
(the form ``ipaddress`` gives a network). Sources are compared, stored in status and sent to
Azure only in that form, so two spellings of one address never wait for each other.

Azure JIT refuses IPv6 sources (E14), so the prefixes of a spec are read with
``parse_azure_source``, which refuses them with the message the CRDs' CEL rules give.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

ANY = "*"

IPV6_UNSUPPORTED = (
    "Azure JIT does not support IPv6 sources: use an IPv4 address (198.51.100.7) or an IPv4 "
    "CIDR range (198.51.100.0/24), or '*' for any source where that is allowed"
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class PrefixError(ValueError):
    """A prefix that is neither ``*``, an IP address nor a CIDR range."""


@dataclass(frozen=True, slots=True)
class SourcePrefix:
    """A parsed prefix; ``network`` is None for ``*``; ``text`` is the canonical spelling."""

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
        network: Network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise PrefixError(
            f"invalid source address prefix {text!r}: use '*', an IP address such as "
            f"198.51.100.7, or a CIDR range such as 198.51.100.0/24 ({exc})"
        ) from None
    network = _unmapped(network)
    return SourcePrefix(text=str(network), network=network)


def parse_azure_source(text: str) -> SourcePrefix:
    """``parse_prefix`` for a source Azure JIT must accept: IPv6 is refused.

    An IPv4-mapped form (``::ffff:198.51.100.7``) is the IPv4 address it maps to and is still
    accepted here, so a spec stored before the CRDs refused every ``:`` form keeps working;
    the CRDs refuse it at admission.
    """
    try:
        prefix = parse_prefix(text)
    except PrefixError:
        if ":" in text:
            raise PrefixError(f"{text!r}: {IPV6_UNSUPPORTED}") from None
        raise
    if prefix.network is not None and prefix.network.version == 6:
        raise PrefixError(f"{text!r}: {IPV6_UNSUPPORTED}")
    return prefix


def canonical_prefix(text: str) -> str:
    """The one spelling of ``text`` (itself when it is no prefix: the caller reports it)."""
    try:
        return parse_prefix(text).text
    except PrefixError:
        return text


def _unmapped(network: Network) -> Network:
    """``::ffff:a.b.c.d/(96+n)`` is the IPv4 network ``a.b.c.d/n``: the same addresses."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def contained_in_any(prefix: SourcePrefix, allowed: tuple[SourcePrefix, ...]) -> bool:
    """True when ``prefix`` lies inside at least one of ``allowed``."""
    return any(candidate.contains(prefix) for candidate in allowed)
