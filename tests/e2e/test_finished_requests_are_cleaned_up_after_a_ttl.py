"""Terminal requests are deleted after the configured TTL; the audit trail stays in Events."""

from datetime import timedelta

import pytest

from tests.support.manifests import policy_manifest, request_manifest
from tests.support.operator import JitWorld


@pytest.mark.parametrize(
    "operator_overrides", [{"terminal_ttl": timedelta(hours=2)}], ids=["2h TTL"]
)
def test_denied_and_expired_requests_are_deleted_once_the_ttl_has_passed(jit: JitWorld) -> None:
    jit.apply(policy_manifest())
    jit.wait_policy_ready("web-admins")
    jit.apply(request_manifest("done", duration="30m"))
    jit.apply(request_manifest("refused", duration="4h"))
    jit.wait_phase("done", "Active")
    jit.wait_phase("refused", "Denied")

    jit.jump(timedelta(minutes=30))
    jit.wait_phase("done", "Expired")

    jit.jump(timedelta(hours=1, minutes=31))  # the denial is now 2h01m old, the expiry 1h31m
    jit.wait_gone("JitAccessRequest", "refused")
    assert jit.get("JitAccessRequest", "done") is not None

    jit.jump(timedelta(minutes=30))
    jit.wait_gone("JitAccessRequest", "done")
    assert any(e["reason"] == "Expired" for e in jit.events("done"))
