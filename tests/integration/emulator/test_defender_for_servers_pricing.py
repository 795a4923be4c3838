"""Defender for Servers Plan 2, which JIT needs (E12), read through the real SDK as a client
checks it before relying on JIT; the admin API models a subscription without it."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.security import SecurityCenter

from azure_arm_emulator.admin_client import AdminError
from tests.support.emulator import SECOND_SUBSCRIPTION, SUBSCRIPTION, EmulatorEndpoint

pytestmark = pytest.mark.integration

SCOPE = f"subscriptions/{SUBSCRIPTION}"


def _client(endpoint: EmulatorEndpoint) -> SecurityCenter:
    # No api_version override: the SDK's own default (2024-01-01 in azure-mgmt-security 7).
    return SecurityCenter(endpoint.credential(), SUBSCRIPTION, **endpoint.sdk_kwargs())


def test_every_subscription_has_servers_plan_2(emulator_endpoint: EmulatorEndpoint) -> None:
    with _client(emulator_endpoint) as security:
        plan = security.pricings.get(SCOPE, "VirtualMachines")
        other = security.pricings.get(f"subscriptions/{SECOND_SUBSCRIPTION}", "VirtualMachines")

    assert (plan.pricing_tier, plan.sub_plan) == ("Standard", "P2")
    assert plan.id == f"/{SCOPE}/providers/Microsoft.Security/pricings/VirtualMachines"
    assert plan.name == "VirtualMachines"
    assert (other.pricing_tier, other.sub_plan) == ("Standard", "P2")


@pytest.mark.parametrize(
    ("tier", "sub_plan"),
    [pytest.param("Standard", "P1", id="plan 1"), pytest.param("Free", None, id="no plan")],
)
def test_a_subscription_without_plan_2_shows_it(
    emulator_endpoint: EmulatorEndpoint, tier: str, sub_plan: str | None
) -> None:
    emulator_endpoint.sync_admin().set_defender_plan(SUBSCRIPTION, tier, sub_plan)

    with _client(emulator_endpoint) as security:
        plan = security.pricings.get(SCOPE, "virtualmachines")
        other = security.pricings.get(f"subscriptions/{SECOND_SUBSCRIPTION}", "VirtualMachines")

    assert (plan.pricing_tier, plan.sub_plan) == (tier, sub_plan)
    assert (other.pricing_tier, other.sub_plan) == ("Standard", "P2")


def test_the_list_holds_servers_and_is_counted(emulator_endpoint: EmulatorEndpoint) -> None:
    admin = emulator_endpoint.sync_admin()

    with _client(emulator_endpoint) as security:
        plans = {p.name: p for p in security.pricings.list(SCOPE).value}
        security.pricings.get(SCOPE, "VirtualMachines")

    assert plans["VirtualMachines"].sub_plan == "P2"
    assert all(p.pricing_tier == "Free" for n, p in plans.items() if n != "VirtualMachines")
    assert admin.call_count("Pricings_List") == 1
    assert admin.call_count("Pricings_Get", method="GET") == 1


@pytest.mark.parametrize("api_version", ["2023-01-01", "2022-03-01", "2018-06-01"])
def test_older_api_versions_are_served(
    emulator_endpoint: EmulatorEndpoint, api_version: str
) -> None:
    with SecurityCenter(
        emulator_endpoint.credential(),
        SUBSCRIPTION,
        api_version=api_version,
        **emulator_endpoint.sdk_kwargs(),
    ) as security:
        plan = security.pricings.get("VirtualMachines")  # before 2024: subscription only
        listed = security.pricings.list().value

    assert plan.pricing_tier == "Standard"
    assert getattr(plan, "sub_plan", None) == (None if api_version == "2018-06-01" else "P2")
    assert "VirtualMachines" in [p.name for p in listed]


def test_a_reset_restores_plan_2_and_bad_plans_are_refused(
    emulator_endpoint: EmulatorEndpoint,
) -> None:
    admin = emulator_endpoint.sync_admin()
    admin.set_defender_plan(SUBSCRIPTION, "Free")
    with pytest.raises(AdminError, match="sub_plan"):
        admin.set_defender_plan(SUBSCRIPTION, "Standard", "P3")

    admin.reset()

    with _client(emulator_endpoint) as security:
        plan = security.pricings.get(SCOPE, "VirtualMachines")
        with pytest.raises(HttpResponseError) as caught:
            security.pricings.get(SCOPE, "NoSuchPlan")
    assert (plan.pricing_tier, plan.sub_plan) == ("Standard", "P2")
    assert caught.value.status_code == 404
