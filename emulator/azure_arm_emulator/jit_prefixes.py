"""Source address prefixes as the JIT service reads them: ``*``, an IPv4 address or an IPv4
CIDR block (host bits zero). IPv6 is refused (E14: "…IPv6 format, which is unsupported by
Just-In-Time Network Access").

Deliberately the emulator's own code, not the operator's ``domain.prefixes``: if the operator
parses or compares prefixes wrongly, an emulator sharing that code would agree with it and
the tests would not notice.
"""

from __future__ import annotations

import ipaddress

ANY = "*"


class SourcePrefixError(ValueError):
    """Not a prefix JIT accepts; ``ipv6`` when it is a well-formed IPv6 one."""

    def __init__(self, message: str, *, ipv6: bool = False) -> None:
        super().__init__(message)
        self.ipv6 = ipv6


def parse_source(text: str) -> ipaddress.IPv4Network | None:
    """The IPv4 network ``text`` names (a bare address is a /32); None for ``*``."""
    if text == ANY:
        return None
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise SourcePrefixError(
            f"'{text}' is not a valid source address prefix: use '*', an IPv4 address or an "
            "IPv4 CIDR block."
        ) from None
    if isinstance(network, ipaddress.IPv6Network):
        raise SourcePrefixError(
            f"The source address prefix '{text}' is in IPv6 format, which is unsupported by "
            "Just-In-Time Network Access.",
            ipv6=True,
        )
    return network


def within(text: str, allowed: list[str]) -> bool:
    """Whether every address of ``text`` lies inside one of ``allowed`` (all parse)."""
    source = parse_source(text)
    for candidate in allowed:
        network = parse_source(candidate)
        if network is None:
            return True
        if source is not None and source.subnet_of(network):
            return True
    return False
