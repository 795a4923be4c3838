"""Which VMs a selector picks from a resource group's listing, and what changed since."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from azure_jit_operator.domain.specs import VmSelector


@dataclass(frozen=True, slots=True)
class VmInfo:
    """A VM as the compute listing shows it."""

    name: str
    id: str
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)


def select_vms(selector: VmSelector, vms: Iterable[VmInfo], *, location: str) -> tuple[str, ...]:
    """Names of the VMs in ``location`` the selector picks, sorted case-insensitively."""
    wanted = location.lower().replace(" ", "")
    return tuple(
        sorted(
            (
                vm.name
                for vm in vms
                if vm.location.lower().replace(" ", "") == wanted and selector.matches(vm.tags)
            ),
            key=str.lower,
        )
    )


def membership_changes(
    before: Iterable[str], after: Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(onboarded, dropped) VM names between two resolutions."""
    old = {n.lower(): n for n in before}
    new = {n.lower(): n for n in after}
    onboarded = tuple(sorted((new[k] for k in new.keys() - old.keys()), key=str.lower))
    dropped = tuple(sorted((old[k] for k in old.keys() - new.keys()), key=str.lower))
    return onboarded, dropped
