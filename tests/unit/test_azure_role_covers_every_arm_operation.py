"""deploy/azure/jit-operator-role.json grants exactly what the operator's Azure adapter calls:
every ARM operation the adapter's pipeline knows (azure/pipeline.py) is mapped to the Azure
actions it needs; the role holds the actions of the operations the adapter calls and nothing
more (no wildcard, no NSG or rule writes: Azure's JIT service writes the rules itself)."""

from __future__ import annotations

import json
import re

from azure_jit_operator.azure import pipeline
from tests.support.repo import ROOT

ROLE = ROOT / "deploy" / "azure" / "jit-operator-role.json"
ADAPTER = ROOT / "operator" / "azure_jit_operator" / "azure"
JIT = "Microsoft.Security/locations/jitNetworkAccessPolicies"
NSG = "Microsoft.Network/networkSecurityGroups"

# operation id -> the actions Azure checks for it. Initiate: Defender for Cloud opens the
# ports on the caller's behalf after checking the caller may read the VM and its network
# (Microsoft's "permissions needed to configure and use JIT"); configuring a JIT policy for a
# VM needs write on the VM as well as on the policy.
ACTIONS: dict[str, set[str]] = {
    "JitNetworkAccessPolicies_Get": {f"{JIT}/read"},
    "JitNetworkAccessPolicies_List": {f"{JIT}/read"},
    "JitNetworkAccessPolicies_CreateOrUpdate": {
        f"{JIT}/write",
        "Microsoft.Compute/virtualMachines/write",
    },
    "JitNetworkAccessPolicies_Delete": {f"{JIT}/delete"},
    "JitNetworkAccessPolicies_Initiate": {
        f"{JIT}/initiate/action",
        f"{JIT}/read",
        "Microsoft.Compute/virtualMachines/read",
        "Microsoft.Network/networkInterfaces/read",
        "Microsoft.Network/publicIPAddresses/read",
    },
    "Pricings_Get": {"Microsoft.Security/pricings/read"},
    "SecurityRules_Get": {f"{NSG}/securityRules/read"},
    "SecurityRules_List": {f"{NSG}/securityRules/read"},
    "SecurityRules_CreateOrUpdate": {f"{NSG}/securityRules/write"},
    "SecurityRules_Delete": {f"{NSG}/securityRules/delete"},
    "NetworkSecurityGroups_Get": {f"{NSG}/read"},
    "NetworkInterfaces_Get": {"Microsoft.Network/networkInterfaces/read"},
    "Subnets_Get": {"Microsoft.Network/virtualNetworks/subnets/read"},
    # The VNet's address space: what the VirtualNetwork tag covers when judging exposure.
    "VirtualNetworks_Get": {"Microsoft.Network/virtualNetworks/read"},
    "VirtualMachines_Get": {"Microsoft.Compute/virtualMachines/read"},
    "VirtualMachines_List": {"Microsoft.Compute/virtualMachines/read"},
    # Deleting a rule is long-running; its status is polled under the network provider.
    "LongRunningOperation_Poll": {
        "Microsoft.Network/locations/operations/read",
        "Microsoft.Network/locations/operationResults/read",
    },
}

# Operations the pipeline can name but the adapter never calls, with the SDK call (a regular
# expression over the adapter module) whose absence shows it. If the adapter starts calling one,
# this test fails until the role follows.
NOT_CALLED: dict[str, tuple[str, str]] = {
    "SecurityRules_CreateOrUpdate": ("network.py", r"create_or_update\("),
    "SecurityRules_Get": ("network.py", r"security_rules\.get\("),
    # An NSG is read whole (NetworkSecurityGroups_Get): a paged list is no snapshot.
    "SecurityRules_List": ("network.py", r"\.list\("),
    "JitNetworkAccessPolicies_List": ("jit.py", r"\.list\("),
}
# Read access the role grants although no listed operation needs it by itself.
READ_ONLY_EXTRAS: set[str] = set()


def _role() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(ROLE.read_text())
    return loaded


def _actions() -> set[str]:
    actions = _role()["Actions"]
    assert isinstance(actions, list)
    return {str(a) for a in actions}


def test_every_operation_the_adapter_can_call_is_mapped_to_azure_actions() -> None:
    known = {operation for _, _, operation in pipeline._OPERATIONS}
    assert known == set(ACTIONS), "map new ARM operations to the actions they need"


def test_the_operations_left_out_are_really_not_called() -> None:
    for operation, (module, call) in NOT_CALLED.items():
        assert not re.search(call, (ADAPTER / module).read_text()), f"{operation} is called now"


def test_the_role_covers_every_operation_the_adapter_calls() -> None:
    called = set(ACTIONS) - set(NOT_CALLED)
    missing = {
        operation: sorted(ACTIONS[operation] - _actions())
        for operation in called
        if ACTIONS[operation] - _actions()
    }
    assert missing == {}


def test_the_role_grants_nothing_the_adapter_does_not_need() -> None:
    needed = set().union(*(ACTIONS[op] for op in set(ACTIONS) - set(NOT_CALLED)))
    assert _actions() - needed - READ_ONLY_EXTRAS == set()
    assert f"{NSG}/write" not in _actions(), "Azure's JIT service writes the rules"
    assert f"{NSG}/securityRules/write" not in _actions()


def test_the_role_is_a_loadable_custom_role_without_wildcards_or_data_actions() -> None:
    role = _role()
    assert role["IsCustom"] is True
    assert role["NotActions"] == role["DataActions"] == role["NotDataActions"] == []
    assert all("*" not in action for action in _actions())
    for action in _actions():
        assert re.fullmatch(r"Microsoft\.\w+(/[\w]+)+", action), action
    scopes = role["AssignableScopes"]
    assert isinstance(scopes, list)
    assert scopes
