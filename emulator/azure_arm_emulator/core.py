"""The emulator without HTTP: state, clock, settings, faults, counters and the ARM routes.

:class:`Emulator` wires the resource providers (:mod:`.jit`, :mod:`.network`,
:mod:`.compute`, :mod:`.lro`) to one store and one clock, and can :meth:`~Emulator.reset` to
the world it started from. The server (:mod:`.server`) and the admin API (:mod:`.admin`)
are thin layers over it; tests can drive it directly too.
"""

from __future__ import annotations

from collections.abc import Callable

from azure_arm_emulator import ids
from azure_arm_emulator.arm import Router
from azure_arm_emulator.clock import EmulatorClock
from azure_arm_emulator.compute import ComputeApi
from azure_arm_emulator.faults import CallCounter, FaultInjector
from azure_arm_emulator.jit import JitApi
from azure_arm_emulator.jit_effects import JitEffects
from azure_arm_emulator.lro import OperationTracker
from azure_arm_emulator.network import NetworkApi
from azure_arm_emulator.pricing import PricingApi
from azure_arm_emulator.resources import ResourcesApi
from azure_arm_emulator.settings import EmulatorSettings
from azure_arm_emulator.store import Store
from azure_arm_emulator.world import World

DEFAULT_LOCATION = "westeurope"


class Emulator:
    def __init__(
        self,
        world: World,
        *,
        settings: EmulatorSettings | None = None,
        clock: EmulatorClock | None = None,
    ) -> None:
        self.world = world
        self.initial_settings = (settings or EmulatorSettings()).copy()
        self.settings = self.initial_settings.copy()
        self.clock = clock or EmulatorClock()
        self.initial_clock_offset = self.clock.offset
        self.faults = FaultInjector()
        self.calls = CallCounter()
        self._wake: Callable[[], None] = lambda: None
        self.clock.subscribe(self.wake)
        self.store = Store.from_world(world, now=self.clock.now())
        self.operations = OperationTracker(self.settings, wake=self.wake)
        self._wire()

    def _wire(self) -> None:
        self.effects = JitEffects(self.store, self.settings, self.clock)
        self.jit = JitApi(self.store, self.settings, self.clock, self.effects)
        self.network = NetworkApi(self.store, self.settings, self.operations)
        self.compute = ComputeApi(self.store, self.settings)
        self.pricing = PricingApi(self.store, self.clock)
        self.resources = ResourcesApi(self.store)
        self.router = Router(
            self.jit.routes()
            + self.pricing.routes()
            + self.resources.routes()
            + self.network.routes()
            + self.compute.routes()
            + self.operations.routes()
        )

    def set_waker(self, wake: Callable[[], None]) -> None:
        """Called whenever something time-dependent may have changed (the server's task)."""
        self._wake = wake

    def wake(self) -> None:
        self._wake()

    def reset(self) -> None:
        """Back to the world, the start settings and clock offset; no faults, no counts."""
        self.settings.update(self.initial_settings.to_dict())
        self.faults.clear()
        self.calls.reset()
        self.clock.set_offset(self.initial_clock_offset)
        self.store = Store.from_world(self.world, now=self.clock.now())
        self.operations.operations.clear()
        self._wire()
        self.wake()

    def tick(self) -> None:
        """Do what is due now: apply initiates, revoke expired JIT access, finish LROs."""
        self.effects.apply_due()
        self.effects.expire_due()
        self.operations.complete_due()

    def location_hint(self, params: dict[str, str]) -> str:
        """The location to name in api-version errors for a request with these params."""
        if "ascLocation" in params:
            return params["ascLocation"]
        if "location" in params:
            return params["location"]
        sub, rg = params.get("subscriptionId"), params.get("resourceGroupName")
        if sub and rg:
            group = self.store.resource_groups.get(ids.key(ids.resource_group_id(sub, rg)))
            if group is not None:
                return group.location
        return DEFAULT_LOCATION
