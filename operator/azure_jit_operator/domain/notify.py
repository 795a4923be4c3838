"""Telling approvers that a request waits: where a JitPolicy's notifications go
(``spec.approval.notify``), and the message, as a Slack / Teams compatible JSON body.

The webhook URL is a secret (whoever holds it can post to the channel): it lives in a Secret
of the policy's namespace with the one fixed name :data:`NOTIFY_SECRET_NAME` (RBAC can grant
``get`` of one Secret *name* in every namespace, but cannot be templated per policy), under a
key the policy names. Nothing here ever holds the URL in a value that is logged or shown.

The body has Slack's incoming-webhook ``text`` (the fallback and notification text) plus
``blocks``; Teams' Office 365 connector webhooks read the same ``text`` (Markdown). User
text (justification, names) is escaped so it cannot mention ``@channel`` or forge links.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NOTIFY_SECRET_NAME = "azure-jit-notify"  # noqa: S105 - a Secret's name, not its value
# Slack's limit for a section block's text is 3000 characters.
_JUSTIFICATION_LIMIT = 500


class NotifySpecError(ValueError):
    """spec.approval.notify is malformed (the CRD schema refuses it first); the message
    names the field below spec.approval.notify."""


@dataclass(frozen=True, slots=True)
class NotifyTarget:
    """Which Secret key of the policy's namespace holds the webhook URL."""

    secret_name: str
    secret_key: str


def parse_notify(raw: object) -> NotifyTarget | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise NotifySpecError("must be an object")
    webhook = raw.get("webhook")
    ref = webhook.get("secretKeyRef") if isinstance(webhook, Mapping) else None
    if not isinstance(ref, Mapping) or not ref.get("key"):
        raise NotifySpecError(
            "webhook.secretKeyRef needs name and key (the Secret key holding the webhook URL)"
        )
    name = str(ref.get("name") or NOTIFY_SECRET_NAME)
    if name != NOTIFY_SECRET_NAME:
        raise NotifySpecError(
            f"webhook.secretKeyRef.name must be {NOTIFY_SECRET_NAME!r}: "
            "the operator may read only the Secret of that name (least privilege); put the "
            "webhook URL under a key of it"
        )
    return NotifyTarget(name, str(ref["key"]))


def webhook_url_problem(url: str) -> str | None:
    """Why the Secret's value cannot be a webhook URL, or None. Never repeats the value."""
    text = url.strip()
    if not text:
        return "the Secret key is empty"
    if not text.startswith(("https://", "http://")):
        return "the Secret key does not hold an http(s) URL"
    if any(c.isspace() for c in text):
        return "the Secret key holds more than one line or contains spaces"
    return None


@dataclass(frozen=True, slots=True)
class WaitingRequest:
    namespace: str
    name: str
    policy: str
    requester: str
    virtual_machine: str
    ports: Sequence[tuple[int, str]]
    duration: str
    justification: str
    required_approvals: int


def escape(text: str) -> str:
    """Slack's mrkdwn escaping (``&``, ``<``, ``>``): no mentions, links or channel pings."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def approve_command(request: WaitingRequest) -> str:
    return f"kubectl jit approve {request.name} -n {request.namespace}"


def approval_message(request: WaitingRequest) -> dict[str, Any]:
    """The JSON body to POST: Slack ``text`` + ``blocks``; Teams reads ``text``."""
    justification = request.justification
    if len(justification) > _JUSTIFICATION_LIMIT:
        justification = justification[: _JUSTIFICATION_LIMIT - 1] + "…"
    ports = ", ".join(f"{n} from {p}" for n, p in request.ports) or "none"
    needed = request.required_approvals
    headline = (
        f"JIT access request {request.namespace}/{request.name} waits for approval "
        f"({needed} approval{'s' if needed != 1 else ''} needed)"
    )
    details = [
        f"*Requester:* {escape(request.requester or 'unknown')}",
        f"*VM:* {escape(request.virtual_machine)}",
        f"*Ports:* {escape(ports)}",
        f"*Duration:* {escape(request.duration)}",
        f"*Policy:* {escape(request.policy)}",
        f"*Justification:* {escape(justification) or '(none)'}",
    ]
    command = approve_command(request)
    text = "\n".join(
        [
            f"*{escape(headline)}*",
            *details,
            f"Approve: `{command}`",
            f"Deny: `kubectl jit deny {request.name} -n {request.namespace} --reason ...`",
        ]
    )
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(details)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"```{command}```"}},
        ],
    }
