"""E13: Azure JIT fails when a policy name and a VM name are together longer than 56
characters; the operator says which VM, how long, and what to do, before calling Azure."""

from azure_jit_operator.domain.azure_limits import name_limit_violations

POLICY = "web-admins"  # 10 characters


def test_names_of_56_characters_together_fit() -> None:
    assert name_limit_violations(POLICY, ["v" * 46, "vm-web-01"]) == []


def test_names_of_57_characters_together_are_refused_with_the_lengths_and_the_fix() -> None:
    vm = "v" * 47

    assert name_limit_violations(POLICY, [vm]) == [
        f"virtual machine '{vm}' (47 characters) and Azure policy name 'web-admins' "
        "(10 characters) are 57 characters together; Azure JIT allows at most 56 (the NSG "
        "rule descriptions it writes would exceed 140 characters): use a shorter VM name or "
        "a new JitPolicy with a shorter spec.azure.policyName"
    ]


def test_each_vm_that_does_not_fit_is_named_in_the_order_given() -> None:
    long_b, long_a = "b" * 50, "a" * 60

    violations = name_limit_violations(POLICY, [long_b, "vm-web-01", long_a])

    assert len(violations) == 2
    assert violations[0].startswith(f"virtual machine '{long_b}' (50 characters)")
    assert violations[1].startswith(f"virtual machine '{long_a}' (60 characters)")


def test_a_long_policy_name_leaves_less_room_for_every_vm() -> None:
    policy = "p" * 50

    assert name_limit_violations(policy, ["vm-01"]) == []
    assert len(name_limit_violations(policy, ["vm-web-01"])) == 1


def test_no_vms_means_no_violations() -> None:
    assert name_limit_violations(POLICY, []) == []
