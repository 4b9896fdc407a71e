"""Port-I/O and MMIO buses: route guest accesses to the device that claims the address.

A device is any object with ``read(offset, size) -> int`` and ``write(offset, size, value)``,
where ``offset`` is relative to the base it was registered at. An access nobody claims behaves
like an empty ISA/PCI bus: reads return all-ones, writes are dropped; each such address is
counted (:attr:`Bus.unclaimed`) and logged at debug level the first time it is seen. Guests probe
absent hardware routinely (Linux's legacy port probes), so these are not warnings.

Routing is cached per (address, size): the engine calls :meth:`Bus.route` on every exit, and a
guest touches only a handful of distinct registers.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


class Device(Protocol):
    """What a bus device implements."""

    def read(self, offset: int, size: int) -> int:
        """Value (little-endian, ``size`` bytes) read at ``offset`` from the device's base."""
        ...

    def write(self, offset: int, size: int, value: int) -> None:
        """Store ``value`` (``size`` bytes) at ``offset`` from the device's base."""
        ...


@dataclass(frozen=True)
class Mapping:
    """One registered window."""

    base: int
    size: int
    device: Device
    name: str

    @property
    def end(self) -> int:
        """First address past the window."""
        return self.base + self.size


class Bus:
    """An address space of non-overlapping device windows.

    ``log`` is kept for callers that pass one; unclaimed accesses go to this module's logger at
    debug level and are counted in :attr:`unclaimed`.
    """

    def __init__(self, name: str, log: Callable[[str], None] | None = None):
        self.name = name
        self._log = log or (lambda _msg: None)
        self._bases: list[int] = []
        self._maps: list[Mapping] = []
        #: (addr << 4 | size) -> the window holding the access, or None if unclaimed
        self._routes: dict[int, Mapping | None] = {}
        #: address -> number of unclaimed accesses seen there
        self.unclaimed: Counter[int] = Counter()

    def register(self, base: int, size: int, device: Device, name: str | None = None) -> Mapping:
        """Claim [base, base+size) for ``device``; ValueError if it overlaps a window."""
        if size <= 0 or base < 0:
            raise ValueError(f"{self.name}: bad window {base:#x}+{size:#x}")
        label = name or type(device).__name__
        i = bisect.bisect_right(self._bases, base)
        if i > 0 and self._maps[i - 1].end > base:
            other = self._maps[i - 1]
            raise ValueError(f"{self.name}: {label} at {base:#x}+{size:#x} overlaps {other.name}")
        if i < len(self._maps) and base + size > self._maps[i].base:
            other = self._maps[i]
            raise ValueError(f"{self.name}: {label} at {base:#x}+{size:#x} overlaps {other.name}")
        mapping = Mapping(base, size, device, label)
        self._bases.insert(i, base)
        self._maps.insert(i, mapping)
        self._routes.clear()
        return mapping

    def find(self, addr: int, size: int = 1) -> Mapping | None:
        """The window holding all of [addr, addr+size), if any."""
        i = bisect.bisect_right(self._bases, addr) - 1
        if i < 0:
            return None
        m = self._maps[i]
        return m if addr + size <= m.end else None

    def route(self, addr: int, size: int) -> Mapping | None:
        """:meth:`find`, cached per (address, size) (sizes are at most 8 bytes)."""
        key = addr << 4 | size
        try:
            return self._routes[key]
        except KeyError:
            m = self._routes[key] = self.find(addr, size)
            return m

    @property
    def mappings(self) -> tuple[Mapping, ...]:
        """Registered windows in address order."""
        return tuple(self._maps)

    def miss(self, addr: int, size: int, what: str) -> None:
        """Count an unclaimed access (debug line the first time per address)."""
        n = self.unclaimed[addr] = self.unclaimed[addr] + 1
        if n == 1:
            log.debug("%s: unclaimed %s of %d byte(s) at %#x", self.name, what, size, addr)

    def read(self, addr: int, size: int) -> int:
        """Dispatch a read; all-ones if unclaimed. Device exceptions propagate."""
        m = self.route(addr, size)
        if m is None:
            self.miss(addr, size, "read")
            return (1 << (8 * size)) - 1
        return m.device.read(addr - m.base, size) & ((1 << (8 * size)) - 1)

    def write(self, addr: int, size: int, value: int) -> None:
        """Dispatch a write; dropped if unclaimed. Device exceptions propagate."""
        m = self.route(addr, size)
        if m is None:
            self.miss(addr, size, "write")
            return
        m.device.write(addr - m.base, size, value)

    def owner(self, addr: int, size: int = 1) -> str | None:
        """Name of the device claiming the access, for error reports."""
        m = self.find(addr, size)
        return m.name if m else None

    def unclaimed_summary(self) -> dict[str, int]:
        """Unclaimed accesses by address (hex strings), for reports."""
        return {f"{addr:#x}": n for addr, n in sorted(self.unclaimed.items())}
