"""A virtio-mmio device (VirtIO 1.2 §4.2) whose transport is the extracted Lean model.

Nothing here decides what a register access means: every register read and write, the
activation check, reset, notification, interrupt status and every split-ring address goes
through the functions of the model module (``mvtool._extracted.model``, extracted from
``MicroVMM/Model/*.lean``). This module only

* routes bus accesses to ``registerAccessOk`` / ``mmioRead`` / ``mmioWrite`` and config-space
  accesses (offset >= 0x100) to the backend;
* notices the edges the model produces (activation, reset, DEVICE_NEEDS_RESET) and keeps the
  device-side counters of each queue (next available and used index);
* walks the split ring of a notified queue with the model's address and check functions and
  hands each descriptor chain to the backend;
* reports every guest-memory access to the access monitor before making it, and turns every
  failure caused by guest input into ``deviceError`` (DEVICE_NEEDS_RESET, VirtIO 1.2 §2.1.2).

The model module is a constructor parameter so that the same device can run a different
extraction (the mutant "vulnerable twin" used to demonstrate CVE-2026-5747).
"""

from __future__ import annotations

import importlib
import logging
import struct
from collections import Counter
from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple, Protocol

from mvtool.errors import MvtoolError
from mvtool.vmm.access_log import AccessKind, AccessMonitor, QueueRegions, Region
from mvtool.vmm.kvm import GuestMemoryError, KvmError

log = logging.getLogger(__name__)

VERIFIED_MODEL = "mvtool._extracted.model"

#: Register names by offset, for log messages (VirtIO 1.2 §4.2.2).
REGISTER_NAMES = {
    0x000: "MagicValue", 0x004: "Version", 0x008: "DeviceID", 0x00C: "VendorID",
    0x010: "DeviceFeatures", 0x014: "DeviceFeaturesSel", 0x020: "DriverFeatures",
    0x024: "DriverFeaturesSel", 0x030: "QueueSel", 0x034: "QueueNumMax", 0x038: "QueueNum",
    0x044: "QueueReady", 0x050: "QueueNotify", 0x060: "InterruptStatus", 0x064: "InterruptACK",
    0x070: "Status", 0x080: "QueueDescLow", 0x084: "QueueDescHigh", 0x090: "QueueDriverLow",
    0x094: "QueueDriverHigh", 0x0A0: "QueueDeviceLow", 0x0A4: "QueueDeviceHigh",
    0x0AC: "SHMSel", 0x0C0: "QueueReset", 0x0FC: "ConfigGeneration",
}

#: Writes whose silent rejection by the model is worth a debug line (the registers
#: CVE-2026-5747 is about, plus the status and feature negotiation).
_WATCHED_WRITES = frozenset({0x020, 0x038, 0x044, 0x070, 0x080, 0x084, 0x090, 0x094, 0x0A0,
                             0x0A4})

_DESC = struct.Struct("<QIHH")  # addr, len, flags, next (VirtIO 1.2 §2.7.5)
_USED_ELEM = struct.Struct("<II")  # id, len (VirtIO 1.2 §2.7.8)


def load_model(name: str = VERIFIED_MODEL) -> ModuleType:
    """Import an extracted model module by name; MvtoolError if it has not been generated."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MvtoolError(f"the extracted device model {name} is missing ({exc}); "
                          "run `python -m mvtool extract`") from exc


def model_constant(model: ModuleType, name: str) -> int:
    """A constant of the model (a module attribute, or a nullary function), as an int."""
    value = getattr(model, name)
    if callable(value):
        value = value()
    return int(value)


def register_name(offset: int) -> str:
    """Human-readable name of a register offset."""
    return REGISTER_NAMES.get(offset, f"register {offset:#05x}")


class DeviceFault(Exception):
    """Guest input the device cannot process: it sets DEVICE_NEEDS_RESET and stops."""


class Descriptor(NamedTuple):
    """One descriptor of a chain, after the model's checks (index valid, buffer in RAM)."""

    addr: int
    length: int
    flags: int
    writable: bool


class GuestBuffers(Protocol):
    """What a backend uses to touch the buffers of a chain (each access is monitored)."""

    def read(self, gpa: int, length: int) -> bytes:
        """Bytes of a device-readable buffer."""
        ...

    def write(self, gpa: int, data: bytes) -> None:
        """Store into a device-writable buffer."""
        ...

    def read_file_into(self, fd: int, gpa: int, length: int, file_offset: int) -> int:
        """pread from ``fd`` straight into guest memory; bytes transferred."""
        ...

    def write_file_from(self, fd: int, gpa: int, length: int, file_offset: int) -> int:
        """pwrite guest memory straight to ``fd``; bytes transferred."""
        ...

    def read_file_into_chain(self, fd: int, segs: list[int], file_offset: int) -> int:
        """Scatter consecutive file bytes into the buffers ``segs`` (flat gpa, len pairs) in
        one step; bytes transferred."""
        ...

    def write_file_from_chain(self, fd: int, segs: list[int], file_offset: int) -> int:
        """Gather the buffers ``segs`` back to back into the file; bytes transferred."""
        ...


class VirtioBackend(Protocol):
    """A device type behind the transport (virtio-blk, …)."""

    #: VirtIO device id (VirtIO 1.2 §5)
    device_id: int
    #: offered feature bits (including VIRTIO_F_VERSION_1)
    features: int

    def bind(self, model: ModuleType) -> None:
        """Called once with the model module the device runs (for the backend's own checks)."""
        ...

    def config_read(self, offset: int, size: int) -> int:
        """Read ``size`` bytes of the device configuration space at ``offset`` (from 0x100)."""
        ...

    def config_write(self, offset: int, size: int, value: int) -> None:
        """Write to the configuration space (most devices ignore it)."""
        ...

    def process(self, chain: list[Descriptor], buffers: GuestBuffers, queue: int) -> int:
        """Execute one request; return the number of bytes written into the guest's buffers.
        Raise DeviceFault for a chain the device cannot process."""
        ...

    def reset(self) -> None:
        """Drop per-activation state (device reset)."""
        ...


class _Buffers:
    """GuestBuffers for one queue: monitor first, then the shim's bounds-checked copy."""

    def __init__(self, dev: VirtioMmioDevice, queue: int):
        self._dev = dev
        self._queue = queue

    def read(self, gpa: int, length: int) -> bytes:
        self._dev._check(AccessKind.BUFFER_READ, gpa, length, self._queue)
        return self._dev._guarded(self._dev.memory.read, gpa, length)

    def write(self, gpa: int, data: bytes) -> None:
        self._dev._check(AccessKind.BUFFER_WRITE, gpa, len(data), self._queue)
        self._dev._guarded(self._dev.memory.write, gpa, data)

    def read_file_into(self, fd: int, gpa: int, length: int, file_offset: int) -> int:
        self._dev._check(AccessKind.BUFFER_WRITE, gpa, length, self._queue)
        done: int = self._dev._guarded(self._dev.memory.pread_from, fd, gpa, length,
                                       file_offset, file_io=True)
        return done

    def write_file_from(self, fd: int, gpa: int, length: int, file_offset: int) -> int:
        self._dev._check(AccessKind.BUFFER_READ, gpa, length, self._queue)
        done: int = self._dev._guarded(self._dev.memory.pwrite_to, fd, gpa, length,
                                       file_offset, file_io=True)
        return done

    def read_file_into_chain(self, fd: int, segs: list[int], file_offset: int) -> int:
        return self._chain(AccessKind.BUFFER_WRITE, "preadv_from", "pread_from", fd, segs,
                           file_offset)

    def write_file_from_chain(self, fd: int, segs: list[int], file_offset: int) -> int:
        return self._chain(AccessKind.BUFFER_READ, "pwritev_to", "pwrite_to", fd, segs,
                           file_offset)

    def _chain(self, kind: AccessKind, bulk_name: str, single_name: str, fd: int,
               segs: list[int], file_offset: int) -> int:
        """A file transfer over a whole chain (``segs`` = gpa, len, gpa, len, …): every range
        is checked by the monitor first, then moved in one scatter/gather call of the shim."""
        dev = self._dev
        dev.monitor.check_ranges(kind, segs, self._queue)
        bulk = getattr(dev.memory, bulk_name, None)
        if bulk is not None:
            done: int = dev._guarded(bulk, fd, segs, file_offset, file_io=True)
            return done
        return self._one_by_one(getattr(dev.memory, single_name), fd, segs, file_offset)

    def _one_by_one(self, op: Callable[..., int], fd: int, segs: list[int],
                    file_offset: int) -> int:
        """The same transfer over a memory without scatter/gather (test doubles)."""
        moved = 0
        for i in range(0, len(segs), 2):
            n: int = self._dev._guarded(op, fd, segs[i], segs[i + 1], file_offset + moved,
                                        file_io=True)
            moved += n
            if n != segs[i + 1]:
                break
        return moved


class VirtioMmioDevice:
    """A virtio-mmio device window (bus interface ``read(offset, size)``, ``write(offset, size,
    value)``) driven by an extracted transport model.

    ``memory`` is the guest RAM (:class:`mvtool.vmm.kvm.GuestMemory` or anything with its
    read/write/pread_from/pwrite_to methods), ``irq(level)`` drives the device's interrupt line
    (level-triggered), ``backend`` is the device type. ``model`` is the extracted model module
    (default: the verified model). Guest RAM is [ram_base, ram_base + ram_size) (default: all
    of ``memory``). ``monitor`` checks every guest-memory access; when None an enforcing
    :class:`AccessMonitor` is created (``self.monitor``).
    """

    def __init__(self, memory: Any, irq: Callable[[bool], None], backend: VirtioBackend, *,
                 model: ModuleType | None = None, ram_base: int = 0,
                 ram_size: int | None = None, monitor: AccessMonitor | None = None,
                 name: str | None = None):
        self.model = model if model is not None else load_model()
        if ram_size is None:
            ram_size = int(memory.size)
        self.memory = memory
        self.backend = backend
        self.name = name or f"virtio-mmio device {backend.device_id}"
        self.monitor = monitor if monitor is not None else AccessMonitor(name=self.name)
        self.monitor.set_ram(ram_base, ram_size)
        self._irq = irq
        m = self.model
        # Flag decoding is a pure function of the 16-bit flags: the model's answers are memoised
        # per flags value (descIsIndirect, descIsWriteOnly, descHasNext).
        self._flag_info: dict[int, tuple[bool, bool, bool]] = {}
        read_desc = getattr(memory, "read_desc", None)
        self._read_desc: Callable[[int], tuple[int, int, int, int]] = (
            read_desc if read_desc is not None
            else lambda gpa: _DESC.unpack(memory.read(gpa, _DESC.size)))
        self._num_queues = model_constant(m, "numQueues")
        self._reg_status = model_constant(m, "regStatus")
        self._reg_notify = model_constant(m, "regQueueNotify")
        self._config_base = model_constant(m, "regConfigSpace")
        backend.bind(m)
        #: the transport state (the model's ``State``)
        self.state: Any = m.initState(backend.device_id, backend.features, ram_base, ram_size)
        self._line = False
        #: next available-ring index to consume / next used-ring index to fill, per queue
        self.last_avail = [0] * self._num_queues
        self.next_used = [0] * self._num_queues
        #: counts, for reports: requests completed, writes the model ignored (by register),
        #: device errors, rejected accesses, activations and resets
        self.requests = 0
        #: descriptors in the chains served (with ``requests``: the guest's scatter/gather)
        self.descriptors = 0
        self.ignored_writes: Counter[str] = Counter()
        self.device_errors: list[str] = []
        self.rejected_accesses: Counter[tuple[int, int]] = Counter()
        self.activations = 0
        self.resets = 0

    # --- bus interface -----------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        """A guest read of ``size`` bytes at ``offset`` in the device window."""
        if offset >= self._config_base:
            return self.backend.config_read(offset - self._config_base, size)
        if not self.model.registerAccessOk(offset, size):
            self._reject(offset, size, "read")
            return 0
        return int(self.model.mmioRead(self.state, offset))

    def write(self, offset: int, size: int, value: int) -> None:
        """A guest write of ``size`` bytes at ``offset`` in the device window."""
        if offset >= self._config_base:
            self.backend.config_write(offset - self._config_base, size, value)
            return
        if not self.model.registerAccessOk(offset, size):
            self._reject(offset, size, "write")
            return
        value &= 0xFFFF_FFFF
        m = self.model
        pre = self.state
        if offset == self._reg_notify:
            # The model's mmioWrite leaves the state unchanged on QueueNotify; applying it keeps
            # every register write on the model's path (a mutant model may differ).
            self.state = m.mmioWrite(pre, offset, value)
            if m.notifyAccepted(pre, value):
                before = self.state.interruptStatus, len(self.device_errors), self.requests
                self._process_queue(value)
                after = self.state.interruptStatus, len(self.device_errors), self.requests
                self._update_irq(event=after != before)
            else:
                self._ignored(offset, value, pre)
                self._update_irq()
            return
        post = m.mmioWrite(pre, offset, value)
        self.state = post
        if offset == self._reg_status:
            self._status_edges(pre, post)
        if post == pre and offset in _WATCHED_WRITES and int(m.mmioRead(pre, offset)) != value:
            self._ignored(offset, value, pre)
        # A write that sets new interrupt bits (activation failure: DEVICE_NEEDS_RESET plus a
        # configuration-change interrupt) is an event of its own.
        self._update_irq(event=(post.interruptStatus & ~pre.interruptStatus) != 0)

    # --- transitions --------------------------------------------------------------------
    def _status_edges(self, pre: Any, post: Any) -> None:
        m = self.model
        if post.status == 0:
            self._reset()
        elif m.isActive(post) and not m.isActive(pre):
            self._activate(post)
        elif post.status != pre.status and not m.isActive(post) and m.isActive(pre):
            log.info("%s: left the active state (status %#x)", self.name, post.status)

    def _activate(self, s: Any) -> None:
        m = self.model
        regions: dict[int, QueueRegions] = {}
        for i in range(self._num_queues):
            q = m.queueAt(s, i)
            if q.ready:
                regions[i] = QueueRegions(
                    desc=Region(int(q.desc), int(m.descTableLen(q))),
                    avail=Region(int(q.driver), int(m.availRingLen(q))),
                    used=Region(int(q.device), int(m.usedRingLen(q))),
                )
        self.last_avail = [0] * self._num_queues
        self.next_used = [0] * self._num_queues
        self.monitor.activate(regions)
        self.activations += 1
        log.debug("%s: activated, queues %s", self.name, sorted(regions))

    def _reset(self) -> None:
        self.last_avail = [0] * self._num_queues
        self.next_used = [0] * self._num_queues
        self.monitor.deactivate()
        self.backend.reset()
        self.resets += 1

    def _update_irq(self, event: bool = False) -> None:
        """Drive the line from ``interruptPending``. ``event``: the device just signalled
        something new (used buffer, configuration change); the line is raised again even if
        it was already high, so that an edge-triggered line sees one edge per event."""
        level = bool(self.model.interruptPending(self.state))
        if level != self._line or (level and event):
            self._line = level
            self._irq(level)

    # --- diagnostics -------------------------------------------------------------------
    def _reject(self, offset: int, size: int, what: str) -> None:
        key = (offset, size)
        self.rejected_accesses[key] += 1
        if self.rejected_accesses[key] == 1:
            log.warning("%s: ignored %d-byte %s at %s (registers take aligned 32-bit accesses, "
                        "VirtIO 1.2 §4.2.2.2)", self.name, size, what, register_name(offset))

    def _ignored(self, offset: int, value: int, pre: Any) -> None:
        name = register_name(offset)
        self.ignored_writes[name] += 1
        n = self.ignored_writes[name]
        if n & (n - 1) == 0:  # 1st, 2nd, 4th, 8th, … occurrence: visible but never a flood
            log.debug("%s: model ignored write of %#x to %s (status %#x, QueueSel %d; %d so far)",
                      self.name, value, name, pre.status, pre.queueSel, n)

    def _fault(self, reason: str) -> None:
        self.state = self.model.deviceError(self.state)
        self.device_errors.append(reason)
        if len(self.device_errors) == 1:
            log.warning("%s: device error, DEVICE_NEEDS_RESET set: %s", self.name, reason)
        else:
            log.debug("%s: device error: %s", self.name, reason)

    # --- guest memory ------------------------------------------------------------------
    def _check(self, kind: AccessKind, gpa: int, length: int, queue: int) -> None:
        self.monitor.check(kind, gpa, length, queue)

    def _guarded(self, op: Callable[..., Any], *args: Any, file_io: bool = False) -> Any:
        """Run a shim access; the shim refusing it (outside RAM) is the guest's fault and
        becomes a DeviceFault. Other failures of file copies (host I/O errors) propagate as
        KvmError for the backend to report as an I/O error."""
        try:
            return op(*args)
        except GuestMemoryError as exc:
            raise DeviceFault(f"guest memory access refused: {exc}") from exc
        except KvmError as exc:
            if file_io:
                raise
            raise DeviceFault(f"guest memory access failed: {exc}") from exc

    def _ring_read(self, kind: AccessKind, gpa: int, length: int, queue: int) -> bytes:
        self.monitor.check(kind, gpa, length, queue)
        try:
            data: bytes = self.memory.read(gpa, length)
        except KvmError as exc:
            raise DeviceFault(f"guest memory access refused: {exc}") from exc
        return data

    def _ring_write(self, gpa: int, data: bytes, queue: int) -> None:
        self.monitor.check(AccessKind.USED_WRITE, gpa, len(data), queue)
        try:
            self.memory.write(gpa, data)
        except KvmError as exc:
            raise DeviceFault(f"guest memory access refused: {exc}") from exc

    # --- queue processing (VirtIO 1.2 §2.7) -----------------------------------------------
    def _process_queue(self, qi: int) -> None:
        try:
            self._drain(qi)
        except DeviceFault as exc:
            self._fault(str(exc))

    def _drain(self, qi: int) -> None:
        m = self.model
        buffers = _Buffers(self, qi)
        completed = self.requests
        try:
            self._drain_rounds(qi, buffers)
        finally:
            if self.requests != completed:
                self.state = m.signalUsedBuffer(self.state)

    def _drain_rounds(self, qi: int, buffers: _Buffers) -> None:
        m = self.model
        while True:
            # Re-read the queue from the state each round: the model decides what the device
            # sees; with the verified model it cannot change while active.
            s = self.state
            if not m.isActive(s):
                break
            q = m.queueAt(s, qi)
            num = int(q.num)
            avail_idx = int.from_bytes(
                self._ring_read(AccessKind.AVAIL_READ, int(m.availIdxAddr(q)), 2, qi), "little")
            last = self.last_avail[qi]
            pending = int(m.availPending(avail_idx, last))
            if pending == 0:
                break
            if not m.availPendingOk(q, avail_idx, last):
                raise DeviceFault(f"queue {qi}: available index {avail_idx} is {pending} entries "
                                  f"ahead of the device, more than the queue size {num}")
            # All entries published so far are served in this exit; one interrupt covers them.
            for _ in range(pending):
                self._one_request(qi, q, buffers)

    def _one_request(self, qi: int, q: Any, buffers: _Buffers) -> None:
        m = self.model
        slot_addr = int(m.availEntryAddr(q, self.last_avail[qi]))
        head = int.from_bytes(self._ring_read(AccessKind.AVAIL_READ, slot_addr, 2, qi), "little")
        chain = self._read_chain(qi, q, head)
        self.descriptors += len(chain)
        written = self.backend.process(chain, buffers, qi)
        used = self.next_used[qi]
        self._ring_write(int(m.usedEntryAddr(q, used)), _USED_ELEM.pack(head, written), qi)
        # The used element must be visible before the index that publishes it (VirtIO 1.2
        # §2.7.8.2); stores to guest RAM from this thread are ordered on x86.
        used = (used + 1) & 0xFFFF
        self._ring_write(int(m.usedIdxAddr(q)), used.to_bytes(2, "little"), qi)
        self.next_used[qi] = used
        self.last_avail[qi] = (self.last_avail[qi] + 1) & 0xFFFF
        self.requests += 1

    def _flags(self, flags: int) -> tuple[bool, bool, bool]:
        m = self.model
        info = (bool(m.descIsIndirect(flags)), bool(m.descIsWriteOnly(flags)),
                bool(m.descHasNext(flags)))
        self._flag_info[flags] = info
        return info

    def _read_chain(self, qi: int, q: Any, head: int) -> list[Descriptor]:
        # The hot loop of the device (one pass per descriptor): model functions and the monitor
        # bound to locals, one shim read per descriptor, no other allocation than the result.
        m = self.model
        s = self.state
        if not m.descIndexValid(q, head):
            raise DeviceFault(f"queue {qi}: head descriptor index {head} out of range")
        chain_length_ok, desc_entry_addr = m.chainLengthOk, m.descEntryAddr
        desc_index_valid, buffer_in_ram = m.descIndexValid, m.bufferInRam
        check, read_desc = self.monitor.check, self._read_desc
        flag_info, decode = self._flag_info, self._flags
        desc_read, desc_size = AccessKind.DESC_READ, _DESC.size
        chain: list[Descriptor] = []
        append = chain.append
        index = head
        count = 0
        while True:
            if not chain_length_ok(q, count):
                raise DeviceFault(f"queue {qi}: descriptor chain from {head} longer than the "
                                  f"queue size (a cycle?)")
            gpa = int(desc_entry_addr(q, index))
            check(desc_read, gpa, desc_size, qi)
            try:
                addr, length, flags, nxt = read_desc(gpa)
            except KvmError as exc:
                raise DeviceFault(f"guest memory access refused: {exc}") from exc
            indirect, writable, has_next = flag_info.get(flags) or decode(flags)
            if indirect:
                raise DeviceFault(f"queue {qi}: indirect descriptor {index} "
                                  "(VIRTIO_F_INDIRECT_DESC not offered)")
            if not buffer_in_ram(s, addr, length):
                raise DeviceFault(f"queue {qi}: descriptor {index} buffer "
                                  f"[{addr:#x}, +{length:#x}) outside guest RAM")
            append(Descriptor(addr, length, flags, writable))
            count += 1
            if not has_next:
                return chain
            if not desc_index_valid(q, nxt):
                raise DeviceFault(f"queue {qi}: descriptor {index} links to index {nxt}, "
                                  "out of range")
            index = nxt
