"""The VM is the unit of Azure state: requests for one VM that are ready together open with
one initiate, and their routine checks share one read of each NSG guarding the VM per drift
interval (the emulator counts every call). Closes are each request's own: one read each at
expiry, so that no close waits for another's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.manifests import policy_manifest, port_rule, request_manifest
from tests.support.operator import JitWorld, ts, wait_for

INITIATE = "JitNetworkAccessPolicies_Initiate"
NSG_GET = "NetworkSecurityGroups_Get"
SOURCE = "198.51.100.7/32"
DRIFT = timedelta(minutes=5)
# Three requests share port 22 (one source), three more ask for a port each.
REQUESTS = {
    "ssh-1": 22,
    "ssh-2": 22,
    "ssh-3": 22,
    "rdp": 3389,
    "winrm": 5985,
    "winrm-tls": 5986,
}
POLICY = policy_manifest(
    vms={"vm-web-01": [port_rule(p, max_duration="3h") for p in (22, 3389, 5985, 5986)]}
)

pytestmark = pytest.mark.parametrize(
    "operator_overrides", [{"drift_interval": DRIFT}], ids=["5m drift checks"]
)


def _all_active(jit: JitWorld) -> list[dict[str, object]]:
    return [jit.wait_phase(name, "Active", timeout=60) for name in REQUESTS]


def test_requests_ready_together_on_one_vm_open_with_one_initiate_and_share_each_nsg_read(
    jit: JitWorld,
) -> None:
    # The requests arrive before their policy: they wait, and become ready at the same time.
    for name, port in REQUESTS.items():
        jit.apply(request_manifest(name, ports=[(port, SOURCE)], duration="1h"))
    for name in REQUESTS:
        wait_for(
            lambda n=name: (
                (jit.condition("JitAccessRequest", n, "Ready") or {}).get("reason")
                == "WaitingForPolicy"
            ),
            timeout=30,
            what=f"{name} to wait for its policy",
        )
    jit.apply(POLICY)
    jit.wait_policy_ready("web-admins")
    active = _all_active(jit)

    assert jit.calls(INITIATE) == 1, "one initiate for all six requests on the VM"
    for port in sorted(set(REQUESTS.values())):
        assert jit.open_sources("vm-web-01", port) == [SOURCE]
    # Port 22's grant is shared: one allow rule whose end is the latest member's.
    assert len(jit.allow_rules("vm-web-01", 22)) == 1
    expiries = {ts(str(a["expiresAt"])) for a in active}
    assert len(expiries) == 1, "opened in one pass, they expire in the same second"

    guards = len(jit._access("vm-web-01")["guards"])
    jit.admin.reset_calls()
    for interval in (1, 2):
        jit.jump(DRIFT + timedelta(seconds=1))
        wait_for(
            lambda i=interval: jit.calls(NSG_GET) >= i * guards,
            timeout=30,
            what=f"the routine check of drift interval {interval}",
        )
    # Per NSG: one read per drift interval for all six requests.
    assert jit.calls(NSG_GET) == 2 * guards
    jit.jump(next(iter(expiries)) - jit.now() + timedelta(seconds=1))
    for name in REQUESTS:
        jit.wait_phase(name, "Expired", timeout=60)
    # At expiry each close reads for itself (Azure had revoked: nothing left to delete).
    assert jit.calls(NSG_GET) == (2 + len(REQUESTS)) * guards
    assert jit.calls(INITIATE) == 0
