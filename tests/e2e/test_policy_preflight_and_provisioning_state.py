"""Before anything is written: a subscription without Defender for Servers Plan 2 is said
clearly (E12). After a write: Azure's provisioningState Updating (E6) is reported and looked
at again, never waited on forever."""

import pytest

from tests.support.manifests import SUBSCRIPTION, policy_manifest
from tests.support.operator import JitWorld, wait_for

PUT = "JitNetworkAccessPolicies_CreateOrUpdate"


@pytest.mark.parametrize(
    ("tier", "sub_plan", "said"),
    [
        pytest.param("Free", None, "is off (pricing tier Free)", id="Defender for Servers off"),
        pytest.param("Standard", "P1", "is Plan 1", id="Defender for Servers Plan 1"),
    ],
)
def test_a_subscription_without_plan_2_is_refused_before_anything_is_written(
    jit: JitWorld, tier: str, sub_plan: str | None, said: str
) -> None:
    jit.admin.set_defender_plan(SUBSCRIPTION, tier, sub_plan)
    jit.apply(policy_manifest())
    ready = wait_for(
        lambda: jit.condition("JitPolicy", "web-admins", "Ready"),
        timeout=30,
        what="the policy's Ready condition",
    )
    assert (ready["status"], ready["reason"]) == ("False", "DefenderPlanMissing")
    assert said in ready["message"]
    assert "az security pricing create -n VirtualMachines" in ready["message"]
    assert jit.calls(PUT) == 0
    assert jit.wait_event("web-admins", "DefenderPlanMissing")["type"] == "Warning"


def test_a_policy_azure_is_still_provisioning_is_ready_and_says_so(jit: JitWorld) -> None:
    jit.admin.update_settings(policy_settle_seconds=3600)
    jit.apply(policy_manifest())
    status = jit.wait_policy_ready("web-admins", timeout=60)
    assert status["provisioningState"] == "Updating"
    ready = jit.condition("JitPolicy", "web-admins", "Ready")
    assert ready is not None
    assert "Azure still reports provisioningState Updating" in ready["message"]


def test_a_policy_that_settles_soon_is_recorded_as_succeeded(jit: JitWorld) -> None:
    jit.admin.update_settings(policy_settle_seconds=3)
    jit.apply(policy_manifest())
    status = jit.wait_policy_ready("web-admins", timeout=60)
    assert status["provisioningState"] == "Succeeded"
    assert jit.calls(PUT) == 1
