"""The access monitor: every guest-memory access a virtio device makes, checked before it is made.

The invariant behind CVE-2026-5747 is that once a device is activated (DRIVER_OK), every
guest-memory access it makes stays inside the regions validated at activation. The verified
model guarantees this by construction (queue configuration is frozen until reset); the monitor
checks it at run time, independently of the model, so that a model that does not guarantee it
(the vulnerable twin) is caught in the act instead of corrupting the VMM:

* ring accesses (available ring, descriptor table, used ring) must lie inside the same ring of
  the same queue as validated at activation, and inside guest RAM;
* buffer accesses must lie inside guest RAM.

A violation is recorded; unless the monitor is in record-only mode it also raises
:class:`ContainmentViolation`, which the engine turns into a controlled stop of the VMM.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from enum import Enum

log = logging.getLogger(__name__)


class AccessKind(Enum):
    """What the device touches. Ring kinds name the ring they must stay in."""

    AVAIL_READ = "avail-read"
    DESC_READ = "desc-read"
    USED_WRITE = "used-write"
    BUFFER_READ = "buffer-read"
    BUFFER_WRITE = "buffer-write"

    @property
    def ring(self) -> str | None:
        """The ring this kind of access must stay in, or None for buffer accesses."""
        return RING_NAMES[self.ring_index] if self.ring_index >= 0 else None


#: Rings in the order QueueRegions lists them.
RING_NAMES = ("desc", "avail", "used")
# Plain attributes on the members keep the per-access check free of enum hashing.
for _i, _kind in enumerate(AccessKind):
    _kind.index = _i  # type: ignore[attr-defined]
    _kind.ring_index = {"avail-read": 1, "desc-read": 0, "used-write": 2}.get(  # type: ignore[attr-defined]
        _kind.value, -1)


@dataclass(frozen=True)
class Region:
    """A guest-physical range [base, base + length)."""

    base: int
    length: int

    def contains(self, gpa: int, length: int) -> bool:
        """Whether [gpa, gpa + length) lies inside this region (no wrap-around)."""
        return self.base <= gpa and length <= self.length and gpa - self.base <= self.length - length

    def __str__(self) -> str:
        return f"[{self.base:#x}, {self.base + self.length:#x})"


@dataclass(frozen=True)
class QueueRegions:
    """The three rings of one queue as validated at activation (VirtIO 1.2 §2.7)."""

    desc: Region
    avail: Region
    used: Region

    def ring(self, name: str) -> Region:
        """The region of ring ``name`` ("desc", "avail" or "used")."""
        region: Region = getattr(self, name)
        return region


@dataclass(frozen=True)
class Access:
    """One guest-memory access the device is about to make."""

    kind: AccessKind
    gpa: int
    length: int
    queue: int

    def __str__(self) -> str:
        return (f"{self.kind.value} of {self.length} byte(s) at {self.gpa:#x} "
                f"(queue {self.queue})")


@dataclass(frozen=True)
class Violation:
    """An access outside the regions validated at activation, and why."""

    access: Access
    reason: str

    def __str__(self) -> str:
        return f"{self.access}: {self.reason}"


class ContainmentViolation(Exception):
    """A device was about to access guest memory outside the regions validated at activation.

    Raised by :meth:`AccessMonitor.check` (not in record-only mode) before the access is made;
    the engine stops the VMM with ``str(exc)`` as the reason.
    """

    def __init__(self, violation: Violation, device: str = "virtio device"):
        self.violation = violation
        super().__init__(f"{device} accessed guest memory outside the regions validated at "
                         f"activation: {violation}")


class AccessMonitor:
    """Checks and counts a device's guest-memory accesses against its activation snapshot.

    ``record_only`` records violations without raising (used to count what a vulnerable model
    would have done). ``max_recorded`` bounds the list of recorded violations; ``violation_count``
    keeps counting past it.
    """

    def __init__(self, *, record_only: bool = False, max_recorded: int = 1000,
                 name: str = "virtio device"):
        self.record_only = record_only
        self.max_recorded = max_recorded
        self.name = name
        #: the violations seen, oldest first (at most ``max_recorded``)
        self.violations: list[Violation] = []
        self.violation_count = 0
        self._counts = [0] * len(AccessKind)
        self._bytes = [0] * len(AccessKind)
        self._ram: Region | None = None
        self._ram_bounds = (0, -1)  # (base, length): length -1 admits nothing
        self._queues: dict[int, QueueRegions] = {}
        self._rings: dict[int, tuple[tuple[int, int], ...]] = {}

    @property
    def accesses(self) -> Counter[AccessKind]:
        """Number of accesses checked, per kind."""
        return Counter({k: self._counts[k.index] for k in AccessKind  # type: ignore[attr-defined]
                        if self._counts[k.index]})  # type: ignore[attr-defined]

    @property
    def bytes(self) -> Counter[AccessKind]:
        """Bytes covered by the accesses checked, per kind."""
        return Counter({k: self._bytes[k.index] for k in AccessKind  # type: ignore[attr-defined]
                        if self._bytes[k.index]})  # type: ignore[attr-defined]

    def set_ram(self, base: int, size: int) -> None:
        """The guest RAM range buffers must lie in."""
        self._ram = Region(base, size)
        self._ram_bounds = (base, size)

    def activate(self, queues: dict[int, QueueRegions]) -> None:
        """Snapshot the rings of every ready queue, as validated when the device went live."""
        self._queues = dict(queues)
        self._rings = {i: tuple((r.base, r.length) for r in (q.desc, q.avail, q.used))
                       for i, q in queues.items()}
        log.debug("%s: activated with %s", self.name,
                  ", ".join(f"q{i} desc {r.desc} avail {r.avail} used {r.used}"
                            for i, r in sorted(queues.items())) or "no queue")

    def deactivate(self) -> None:
        """Forget the snapshot (device reset): no ring access is valid until the next one."""
        self._queues = {}
        self._rings = {}

    @property
    def active_regions(self) -> dict[int, QueueRegions]:
        """The current activation snapshot, by queue index."""
        return dict(self._queues)

    def _why(self, access: Access) -> str | None:
        ram = self._ram
        if ram is None or not ram.contains(access.gpa, access.length):
            return f"outside guest RAM {ram}" if ram else "guest RAM not configured"
        ring = access.kind.ring
        if ring is None:
            return None
        regions = self._queues.get(access.queue)
        if regions is None:
            return f"queue {access.queue} was not validated at activation"
        region = regions.ring(ring)
        if not region.contains(access.gpa, access.length):
            return f"outside the {ring} ring {region} validated at activation"
        return None

    def check(self, kind: AccessKind, gpa: int, length: int, queue: int) -> None:
        """Record an access about to be made; raise ContainmentViolation if it is outside the
        validated regions (unless record-only)."""
        i: int = kind.index  # type: ignore[attr-defined]
        self._counts[i] += 1
        self._bytes[i] += length
        # Fast path (no allocation): inside RAM and, for ring accesses, inside the snapshot.
        base, size = self._ram_bounds
        if base <= gpa and length <= size and gpa - base <= size - length:
            ring: int = kind.ring_index  # type: ignore[attr-defined]
            if ring < 0:
                return
            rings = self._rings.get(queue)
            if rings is not None:
                base, size = rings[ring]
                if base <= gpa and length <= size and gpa - base <= size - length:
                    return
        self._violation(Access(kind, gpa, length, queue))

    def check_ranges(self, kind: AccessKind, segs: list[int], queue: int) -> None:
        """:meth:`check` for each range of ``segs`` (flat ``gpa, len`` pairs), in order: the
        buffers of one request. Same counts, records and exceptions as calling :meth:`check`
        per range; ranges that all lie in guest RAM are accounted in one step."""
        if kind.ring_index < 0:  # type: ignore[attr-defined]
            base, size = self._ram_bounds
            total = 0
            it = iter(segs)
            for gpa, length in zip(it, it, strict=True):
                if not (base <= gpa and length <= size and gpa - base <= size - length):
                    break
                total += length
            else:
                i: int = kind.index  # type: ignore[attr-defined]
                self._counts[i] += len(segs) >> 1
                self._bytes[i] += total
                return
        check = self.check
        for j in range(0, len(segs), 2):
            check(kind, segs[j], segs[j + 1], queue)

    def _violation(self, access: Access) -> None:
        reason = self._why(access) or "outside the validated regions"
        violation = Violation(access, reason)
        self.violation_count += 1
        if len(self.violations) < self.max_recorded:
            self.violations.append(violation)
        if self.violation_count == 1:
            log.warning("%s: containment violation: %s", self.name, violation)
        if not self.record_only:
            raise ContainmentViolation(violation, self.name)
