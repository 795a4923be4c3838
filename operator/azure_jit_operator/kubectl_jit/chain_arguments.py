"""Command line of ``kubectl jit extend`` and ``kubectl jit review``: their options, help text
and parsers (added to the ``kubectl jit`` parser by :mod:`.arguments`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

MAX_JUSTIFICATION = 500
MAX_COMMENT = 1024


@dataclass(frozen=True, slots=True)
class ExtendOptions:
    name: str
    duration: timedelta
    reason: str  # empty: the predecessor's justification
    new_name: str | None
    wait: bool
    timeout: timedelta


@dataclass(frozen=True, slots=True)
class ReviewOptions:
    name: str
    comment: str


ChainOptions = ExtendOptions | ReviewOptions

EXTEND_HELP = """\
Continue an Active request: creates a follow-on JitAccessRequest (spec.extends: NAME) for
the same policy, VM, ports and sources. It opens at once, sharing the port with NAME, and
ends DURATION after NAME's expiresAt, so access goes on without a gap and without a second
source. The whole chain (first start to new end) must stay within the port's
maxRequestAccessDuration; approvals apply as to any request (under a Manual policy NAME keeps
running while the extension waits; if NAME expires first, its port closes). A request is
extended once: extend the extension to go on.

examples:
  kubectl jit extend vm-web-01-22-x7k2p --for 30m
  kubectl jit extend vm-web-01-22-x7k2p --for 1h --reason "INC-4711 still debugging" --wait
"""

REVIEW_HELP = """\
Record your review of an emergency (break-glass) request in its status.reviews: who and
when, with an optional comment. Needs the 'approve' verb on the request's JitPolicy, and you
cannot review your own request. The request keeps ReviewRequired=True (and the alert
AzureJitEmergencyAccessUnreviewed fires) until reviewed; reviewing works after it ended.

examples:
  kubectl jit review vm-web-01-22-x7k2p
  kubectl jit review vm-web-01-22-x7k2p --comment "INC-4711: restart of the DB, justified"
"""


def add_parsers(
    sub: Any,
    common: argparse.ArgumentParser,
    *,
    object_name: Callable[[str], str],
    duration: Callable[[str], timedelta],
    text: Callable[[int, str], Callable[[str], str]],
    wait_flags: Callable[[argparse.ArgumentParser, str], None],
) -> None:
    """Add ``extend`` and ``review`` to the ``kubectl jit`` subcommands."""
    extend = sub.add_parser(
        "extend",
        parents=[common],
        help="extend an Active request (a follow-on request sharing its port)",
        description=EXTEND_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    extend.add_argument("name", type=object_name, metavar="NAME")
    extend.add_argument(
        "--for",
        dest="duration",
        required=True,
        type=duration,
        metavar="DURATION",
        help="how much longer than NAME's expiry, 1m to 24h (e.g. 30m)",
    )
    extend.add_argument(
        "--reason",
        default=None,
        type=text(MAX_JUSTIFICATION, "the reason"),
        help="why (default: NAME's justification)",
    )
    extend.add_argument(
        "--name",
        dest="new_name",
        type=object_name,
        help="name of the extension (default: NAME-ext-<random>)",
    )
    wait_flags(extend, "until the extension is open (or Denied)")

    review = sub.add_parser(
        "review",
        parents=[common],
        help="review an emergency request (needs the 'approve' verb on its JitPolicy)",
        description=REVIEW_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    review.add_argument("name", type=object_name, metavar="NAME")
    review.add_argument(
        "--comment",
        default=None,
        type=text(MAX_COMMENT, "the comment"),
        help="optional: what you found",
    )


def options_from(args: argparse.Namespace, *, default_wait: timedelta) -> ChainOptions | None:
    if args.command == "extend":
        return ExtendOptions(
            name=args.name,
            duration=args.duration,
            reason=args.reason or "",
            new_name=args.new_name,
            wait=args.wait,
            timeout=args.timeout or default_wait,
        )
    if args.command == "review":
        return ReviewOptions(name=args.name, comment=args.comment or "")
    return None
