"""Run-time settings and fault definitions refuse what they cannot honour."""

from __future__ import annotations

from typing import Any

import pytest

from azure_arm_emulator import jit_rule_names
from azure_arm_emulator.faults import CallCounter, FaultError, FaultInjector
from azure_arm_emulator.settings import EmulatorSettings, SettingsError


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"revoke_lag": 5}, id="an unknown setting name"),
        pytest.param({"never_revoke": "yes"}, id="a switch that is not a boolean"),
        pytest.param({"page_size": 0}, id="an empty page"),
        pytest.param({"revoke_lag_seconds": -1}, id="a negative lag"),
        pytest.param({"lro_retry_after_seconds": 0.5}, id="a fractional Retry-After"),
    ],
)
def test_invalid_settings_change_nothing(changes: dict[str, Any]) -> None:
    settings = EmulatorSettings()

    with pytest.raises(SettingsError):
        settings.update({"page_size": 7, **changes})

    assert settings == EmulatorSettings()


def test_valid_settings_apply_together() -> None:
    settings = EmulatorSettings()

    settings.update(
        {"never_revoke": True, "revoke_lag_seconds": 30, "lro_retry_after_seconds": None}
    )

    assert (settings.never_revoke, settings.revoke_lag_seconds) == (True, 30.0)
    assert settings.lro_retry_after_seconds is None


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"kind": "status"}, id="a fault without an operation"),
        pytest.param({"operation": "*", "kind": "explode"}, id="an unknown kind"),
        pytest.param({"operation": "*", "kind": "status", "status": 200}, id="a success status"),
        pytest.param({"operation": "*", "kind": "status", "times": 0}, id="zero times"),
        pytest.param({"operation": "*", "kind": "drop", "phase": "later"}, id="an unknown phase"),
        pytest.param({"operation": "*", "kind": "status", "colour": "red"}, id="an unknown field"),
    ],
)
def test_invalid_fault_definitions_are_refused(spec: dict[str, Any]) -> None:
    with pytest.raises(FaultError):
        FaultInjector().add(spec)


def test_fault_fires_its_number_of_times_for_its_operation_only() -> None:
    faults = FaultInjector()
    faults.add({"operation": "SecurityRules_Delete", "kind": "status", "status": 429, "times": 2})

    decisions = [faults.decide("SecurityRules_Delete", "DELETE", "before") for _ in range(3)]
    other = faults.decide("SecurityRules_Get", "GET", "before")

    assert [d.fault is not None for d in decisions] == [True, True, False]
    assert other.fault is None


def test_throttling_fault_answers_like_arm() -> None:
    faults = FaultInjector()
    fault = faults.add({"operation": "*", "kind": "status", "status": 429, "retry_after": 3})

    error = fault.error("00000000-0000-0000-0000-000000000000")

    assert (error.status, error.code, error.headers) == (
        429,
        "SubscriptionRequestsThrottled",
        {"Retry-After": "3"},
    )


def test_latency_faults_add_up_and_do_not_stop_the_call() -> None:
    faults = FaultInjector()
    faults.add({"operation": "*", "kind": "latency", "latency_seconds": 0.2, "times": None})
    faults.add({"operation": "VirtualMachines_Get", "kind": "latency", "latency_seconds": 0.3})

    decision = faults.decide("VirtualMachines_Get", "GET", "before")

    assert decision.fault is None
    assert decision.latency == pytest.approx(0.5)


def test_after_phase_faults_wait_for_the_work_to_be_done() -> None:
    faults = FaultInjector()
    faults.add({"operation": "*", "kind": "drop", "phase": "after"})

    assert faults.decide("X_Get", "GET", "before").fault is None
    assert faults.decide("X_Get", "GET", "after").fault is not None


def test_call_counter_groups_by_operation_method_and_status() -> None:
    counter = CallCounter()
    counter.record("SecurityRules_Delete", "delete", 202)
    counter.record("SecurityRules_Delete", "DELETE", 429)

    assert counter.to_dict() == {
        "SecurityRules_Delete": {
            "total": 2,
            "by_method": {"DELETE": 2},
            "by_status": {"202": 1, "429": 1},
        }
    }


def test_jit_rule_numbers_are_stable_per_vm_and_take_both_signs() -> None:
    keys = [
        f"/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm-{i}"
        for i in range(64)
    ]
    numbers = [jit_rule_names.vm_number(k) for k in keys]

    assert numbers == [jit_rule_names.vm_number(k.upper()) for k in keys]
    assert any(n < 0 for n in numbers)
    assert any(n > 0 for n in numbers)
    assert all(-(2**31) <= n < 2**31 for n in numbers)


def test_defaults_model_azure_and_unknown_generations_are_refused() -> None:
    settings = EmulatorSettings()

    assert (settings.apply_delay_seconds, settings.policy_settle_seconds) == (3.0, 3.0)
    assert settings.jit_rule_generation == "current"
    assert (settings.history_justifications, settings.history_limit) == (True, None)
    with pytest.raises(SettingsError):
        settings.update({"jit_rule_generation": "2019"})
    with pytest.raises(SettingsError):
        settings.update({"history_limit": 0})
    settings.update({"history_limit": 5, "history_justifications": False})
    assert (settings.history_limit, settings.history_justifications) == (5, False)
    settings.update({"history_limit": None})
    assert settings.history_limit is None
