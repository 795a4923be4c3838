"""A fault can hit one subscription only, so tests can throttle one and not the others."""

from azure_arm_emulator.faults import FaultInjector


def test_a_fault_scoped_to_one_subscription_leaves_the_others_alone() -> None:
    injector = FaultInjector()
    injector.add(
        {"operation": "*", "kind": "status", "status": 429, "times": None, "subscription": "SUB-A"}
    )
    throttled = injector.decide("VirtualMachines_Get", "GET", "before", subscription="sub-a")
    spared = injector.decide("VirtualMachines_Get", "GET", "before", subscription="sub-b")
    assert throttled.fault is not None
    assert spared.fault is None
