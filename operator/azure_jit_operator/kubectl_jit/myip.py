"""``--my-ip``: the caller's public IP address, found without guessing.

A machine cannot know its public address by itself (NAT, proxies, VPNs), so the CLI only
uses what the caller has configured, in this order:

1. ``$KUBECTL_JIT_MY_IP`` — the address itself (e.g. exported by a VPN login script);
2. ``$KUBECTL_JIT_MY_IP_URL`` — an HTTPS "what is my IP" echo service the caller trusts
   (e.g. the company's own), which answers with the address as plain text.

There is no built-in third-party default: asking a service on the internet sends it the
caller's address and depends on it being up. Without either variable, ``--my-ip`` fails
with a message saying how to set one, or to pass ``--from`` instead.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from collections.abc import Callable, Mapping

ADDRESS_VARIABLE = "KUBECTL_JIT_MY_IP"
SERVICE_VARIABLE = "KUBECTL_JIT_MY_IP_URL"
TIMEOUT = 5.0


class DetectionError(Exception):
    """The address could not be found; the message says what to do instead."""


def fetch_text(url: str) -> str:
    """GET ``url`` over HTTPS and return the body as text (the echo service's answer)."""
    if not url.startswith("https://"):
        raise DetectionError(f"${SERVICE_VARIABLE} must be an https:// URL, not {url!r}")
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # noqa: S310 (https only)
        body: bytes = response.read(256)
    return body.decode("ascii", errors="replace")


def detect_public_ip(env: Mapping[str, str], *, fetch: Callable[[str], str] = fetch_text) -> str:
    """The caller's address as a host prefix (``198.51.100.7/32``, ``2001:db8::7/128``)."""
    given = env.get(ADDRESS_VARIABLE, "").strip()
    if given:
        return _host_prefix(given, origin=f"${ADDRESS_VARIABLE}")
    url = env.get(SERVICE_VARIABLE, "").strip()
    if not url:
        raise DetectionError(
            "--my-ip cannot tell your public IP address by itself: pass --from <your address> "
            f"(e.g. --from 198.51.100.7/32), or set ${ADDRESS_VARIABLE} to it, or set "
            f"${SERVICE_VARIABLE} to an https:// service that echoes it (see docs/kubectl-jit.md)"
        )
    try:
        answer = fetch(url)
    except DetectionError:
        raise
    except OSError as exc:
        raise DetectionError(
            f"--my-ip: asking {url} for your address failed ({exc}); pass --from instead"
        ) from None
    return _host_prefix(answer.strip(), origin=url)


def _host_prefix(text: str, *, origin: str) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise DetectionError(
            f"--my-ip: {origin} gave {text[:60]!r}, which is not an IP address; pass --from instead"
        ) from None
    return f"{address}/{address.max_prefixlen}"
