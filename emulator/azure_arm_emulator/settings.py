"""Run-time knobs of the emulator (CLI flags at start, admin API afterwards).

``revoke_lag_seconds`` models Azure's untimed revoke at ``endTimeUtc``; ``never_revoke``
switches revoking off so a client's own forced close can be tested. The LRO knobs shape
how long-running network operations answer pollers; ``page_size`` the ``nextLink`` paging.
``token_lifetime_seconds`` is the ``expires_in`` of access tokens from the Entra endpoint.
The JIT knobs model what real Azure was seen doing (E-rows of ``docs/azure-fidelity.md``) and
switch the unknowns (U-rows) so a client can be tested against each possible answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from azure_arm_emulator.jit_rule_names import GENERATIONS


class SettingsError(ValueError):
    """A setting with a wrong name or value."""


@dataclass
class EmulatorSettings:
    revoke_lag_seconds: float = 0.0
    # Seconds (emulator clock) between an initiate's 202 and its allow rules on the NSGs; the
    # port says Initiating until then. Real Azure took "seconds" (E7); exactly how long is
    # unknown (U2), so a few seconds by default. The test suite starts emulators with 0.
    apply_delay_seconds: float = 3.0
    # Seconds (emulator clock) a policy PUT stays provisioningState "Updating" (E6).
    policy_settle_seconds: float = 3.0
    # Which names/descriptions JIT gives new NSG rules: current | legacy | mixed (E1, E2).
    jit_rule_generation: str = "current"
    # False: the requests history carries no justification (whether Azure keeps it: U1).
    history_justifications: bool = True
    # Keep only the newest N entries of a policy's requests history (None: all; U7).
    history_limit: int | None = None
    # A newer initiate for a VM port: "replace" the older one's rules (assumed), or "add" its
    # own beside them, the older grant staying until its own end (U3).
    second_initiate: str = "replace"
    # True: a source must equal one of the policy's allowed prefixes, not merely lie inside
    # one (#53026 saw only the exact block work in 2020; U6).
    exact_source_prefix_only: bool = False
    never_revoke: bool = False
    page_size: int = 100
    arm_latency_seconds: float = 0.0
    lro_in_progress_polls: int = 1
    lro_retry_after_seconds: int | None = 1
    lro_background_seconds: float = 5.0
    accept_any_token: bool = True
    token_lifetime_seconds: int = 3599  # expires_in of the Entra token endpoint (wall clock)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def copy(self) -> EmulatorSettings:
        return replace(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (names as in :meth:`to_dict`) after validating all of them."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise SettingsError(f"unknown settings {unknown}; known: {sorted(known)}")
        candidate = replace(self)
        for name, value in changes.items():
            setattr(candidate, name, _coerce(name, value))
        for f in fields(self):
            setattr(self, f.name, getattr(candidate, f.name))


_INTEGERS = (
    "page_size",
    "lro_in_progress_polls",
    "lro_retry_after_seconds",
    "token_lifetime_seconds",
    "history_limit",
)


_CHOICES: dict[str, tuple[str, ...]] = {
    "second_initiate": ("replace", "add"),
    "jit_rule_generation": tuple(GENERATIONS),
}


def _coerce(name: str, value: Any) -> Any:
    choices = _CHOICES.get(name)
    if choices is not None:
        if value not in choices:
            raise SettingsError(f"{name} must be one of {list(choices)}")
        return value
    if name == "history_limit" and value is None:
        return None
    if name in (
        "never_revoke",
        "accept_any_token",
        "history_justifications",
        "exact_source_prefix_only",
    ):
        if not isinstance(value, bool):
            raise SettingsError(f"{name} must be true or false")
        return value
    if name == "lro_retry_after_seconds" and value is None:
        return None
    if name in _INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{name} must be an integer")
        minimum = 0 if name == "lro_in_progress_polls" else 1
        if value < minimum:
            raise SettingsError(f"{name} must be >= {minimum}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise SettingsError(f"{name} must be a number >= 0")
    return float(value)
