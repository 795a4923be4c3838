"""A policy PUT that Azure keeps failing with a 5xx (E14 shows a 500 for a body Azure does
not like) is reported with Azure's message and retried with growing pauses, not every few
seconds forever."""

from tests.support.manifests import policy_manifest
from tests.support.operator import JitWorld, wait_for

PUT = "JitNetworkAccessPolicies_CreateOrUpdate"


def test_a_policy_put_that_keeps_failing_is_reported_and_retried_ever_more_slowly(
    jit: JitWorld,
) -> None:
    jit.admin.add_fault(
        PUT,
        status=500,
        code="InternalServerError",
        message="Internal server error has occurred.",
        times=None,
    )
    jit.apply(policy_manifest())

    def ready_says(text: str) -> dict[str, str] | None:
        ready = jit.condition("JitPolicy", "web-admins", "Ready")
        return ready if ready and ready["status"] == "False" and text in ready["message"] else None

    first = wait_for(lambda: ready_says("retrying in 10s"), timeout=60, what="the first failure")
    assert first["reason"] == "AzureUnavailable"
    assert "Internal server error has occurred." in first["message"]
    wait_for(lambda: ready_says("retrying in 20s"), timeout=90, what="a longer pause")
    event = jit.wait_event("web-admins", "AzureUnavailable")
    assert event["type"] == "Warning"

    jit.admin.clear_faults()
    jit.wait_policy_ready("web-admins", timeout=90)
