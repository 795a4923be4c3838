"""Names and descriptions of the NSG rules JIT writes, per rule *generation* (E1, E2).

Since 2023 (Defender for Cloud release notes) JIT names its rules
``MicrosoftDefenderForCloud-JITRule…`` and describes them ``MDC JIT Network Access rule …``;
before, ``SecurityCenter-JITRule…`` and ``ASC JIT Network Access rule …``. Existing rules were
not renamed, so real NSGs carry both. The shapes are the same in both generations:

- deny:  ``<prefix>_<int32>_<32 upper-case hex GUID>``
- allow: ``<prefix>-<int32>-<32 upper-case hex GUID>``

The int32 may be negative (``…JITRule_-1105480617_9EF6…``) and is the same in one VM's deny
and allow rules, so it is derived from the VM here (a stable hash of its id).

The setting ``jit_rule_generation`` picks ``current`` (default), ``legacy`` or ``mixed``. Mixed
models an NSG where JIT was enabled before the rename and used after it: deny rules (written
when the policy was created) are legacy, allow rules (written per initiate) are current. It
is deterministic so tests can rely on which is which.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Literal

GENERATIONS = ("current", "legacy", "mixed")


@dataclass(frozen=True, slots=True)
class RuleGeneration:
    prefix: str
    description_tag: str


CURRENT = RuleGeneration(prefix="MicrosoftDefenderForCloud-JITRule", description_tag="MDC")
LEGACY = RuleGeneration(prefix="SecurityCenter-JITRule", description_tag="ASC")


def generation_for(setting: str, access: Literal["Allow", "Deny"]) -> RuleGeneration:
    """The generation a newly written rule of ``access`` gets under ``setting``."""
    if setting == "legacy" or (setting == "mixed" and access == "Deny"):
        return LEGACY
    return CURRENT


def vm_number(vm_key: str) -> int:
    """A signed int32 that is stable for one VM (so deny and allow rules share it)."""
    digest = hashlib.sha256(vm_key.lower().encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def _guid() -> str:
    return uuid.uuid4().hex.upper()


def deny_rule_name(generation: RuleGeneration, vm_key: str) -> str:
    return f"{generation.prefix}_{vm_number(vm_key)}_{_guid()}"


def allow_rule_name(generation: RuleGeneration, vm_key: str) -> str:
    return f"{generation.prefix}-{vm_number(vm_key)}-{_guid()}"


def deny_description(generation: RuleGeneration, policy: str, vm: str) -> str:
    tag = generation.description_tag
    return f"{tag} JIT Network Access rule for policy '{policy}' of VM '{vm}'."


def allow_description(generation: RuleGeneration, policy: str, vm: str) -> str:
    return (
        f"{generation.description_tag} JIT Network Access rule created by an initiation request "
        f"for policy '{policy}' of VM '{vm}'."
    )
