"""The request lifecycle (open, early revoke, forced close, verified close) holds whatever Azure
names its JIT rules (E1, E2: current ``MicrosoftDefenderForCloud-JITRule…``, legacy
``SecurityCenter-JITRule…``, or both on one NSG) and however long Azure takes to apply an
initiate (U2: at once, the emulator's default of a few seconds, 90 s).

Azure's own revoke is off at first, so the forced close is the operator's: it must see,
delete and confirm the rules of each generation; then on, so the last close is Azure's and
the operator only confirms it. The SIGKILL restart runs with both
generations and the default apply delay in ``test_a_close_never_waits_for_another_request.py``
(and with current names in ``test_operator_killed_while_a_port_is_open.py``).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld, ts, wait_for

DEFAULT_APPLY_DELAY = 3.0  # the emulator's default (EmulatorSettings.apply_delay_seconds)


def _open(jit: JitWorld, name: str, vm: str, delay: float) -> dict[str, object]:
    jit.apply(request_manifest(name, vm=vm, duration="30m"))
    if delay:

        def applying() -> bool:
            ready = jit.condition("JitAccessRequest", name, "Ready")
            return ready is not None and ready["reason"] == "AzureApplying"

        wait_for(applying, timeout=30, what=f"{name} to wait for Azure to apply its initiate")
        assert jit.allow_rules(vm, 22) == []
        jit.jump(timedelta(seconds=delay + 1))
    return jit.wait_phase(name, "Active", timeout=60)


@pytest.mark.parametrize(
    ("generation", "delay"),
    [
        pytest.param("current", 0.0, id="current names, applied at once"),
        pytest.param("legacy", 0.0, id="legacy names, applied at once"),
        pytest.param("mixed", 0.0, id="both generations, applied at once"),
        pytest.param("current", DEFAULT_APPLY_DELAY, id="current names, the default apply delay"),
        pytest.param("mixed", 90.0, id="both generations, applied after 90 s"),
    ],
)
def test_open_revoke_and_forced_close_work_for_every_rule_generation_and_apply_delay(
    jit: JitWorld, generation: str, delay: float
) -> None:
    jit.admin.update_settings(
        jit_rule_generation=generation, apply_delay_seconds=delay, never_revoke=True
    )
    jit.apply(policy_manifest(vms={"vm-web-01": [port_rule(22)], "vm-web-02": [port_rule(22)]}))
    jit.wait_policy_ready("web-admins")
    kept = _open(jit, "kept", "vm-web-01", delay)
    assert jit.open_sources("vm-web-01", 22) == ["198.51.100.7/32"]
    assert jit.status("JitAccessRequest", "kept")["ports"][0]["state"] == "Open"

    _open(jit, "revoked", "vm-web-02", delay)
    jit.delete("JitAccessRequest", "revoked")
    jit.wait_gone("JitAccessRequest", "revoked", timeout=60)
    assert jit.allow_rules("vm-web-02", 22) == []

    jit.jump(ts(str(kept["expiresAt"])) - jit.now() + timedelta(seconds=1))
    expired = jit.wait_phase("kept", "Expired", timeout=60)
    assert "rule(s) confirmed gone" in expired["message"]
    assert jit.allow_rules("vm-web-01", 22) == []
    assert jit.deny_rules("vm-web-01"), "JIT's deny rule stays"

    # Verified close: Azure revokes on time now; the operator only confirms it on the NSG.
    jit.admin.update_settings(never_revoke=False)
    deletes = jit.calls("SecurityRules_Delete", "DELETE")
    verified = _open(jit, "verified", "vm-web-02", delay)
    jit.jump(ts(str(verified["expiresAt"])) - jit.now() + timedelta(seconds=1))
    assert "rule(s) confirmed gone" in jit.wait_phase("verified", "Expired", timeout=60)["message"]
    assert jit.allow_rules("vm-web-02", 22) == []
    assert jit.calls("SecurityRules_Delete", "DELETE") == deletes  # Azure closed it itself
