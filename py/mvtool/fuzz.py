"""Hostile-guest fuzzing of the extracted transport and ring arithmetic.

A trace starts from ``initState`` and applies register writes, register reads and queue
notifications chosen by a random source. Random writes alone almost never reach DRIVER_OK, so the
generator is biased towards the driver protocol (VirtIO 1.2 §3.1.1): it follows the handshake,
programs queue layouts (mostly valid, sometimes not) and activates, then mixes in hostile writes —
the CVE-2026-5747 rewrites of QueueNum/QueueDesc/Driver/Device/QueueReady after DRIVER_OK,
out-of-range QueueSel, stray status values, resets.

The steps drive the VMM's own :class:`~mvtool.vmm.virtio_mmio.VirtioMmioDevice` (the transport
and ring arithmetic it runs are the extracted model's), so a notification runs the device's real
processing loop on adversarial guest memory: every value the device reads from the guest (avail
index, ring entries, descriptor fields) is drawn from the random source, biased to the boundaries.
Every guest-memory access goes through the access monitor (``mvtool.vmm.access_log``) against
the regions validated at activation; every step goes through
:class:`~mvtool.monitor.StateMonitor`.

The random source is a :class:`random.Random` for the benchmark (``mvtool fuzz``) and
Hypothesis's ``st.randoms()`` in the test suite, which shrinks a failing trace to a short one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

from mvtool.errors import MvtoolError
from mvtool.monitor import StateMonitor, Violation, const
from mvtool.vmm.access_log import AccessMonitor
from mvtool.vmm.kvm import GuestMemoryError
from mvtool.vmm.virtio_mmio import VirtioMmioDevice

U16 = 0xFFFF
U32 = 0xFFFF_FFFF
U64 = (1 << 64) - 1
#: virtio-blk: VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_SEG_MAX
DEVICE_FEATURES = (1 << 32) | (1 << 9) | (1 << 2)
DEVICE_ID_BLK = 2
_DESC = struct.Struct("<QIHH")  # addr, len, flags, next (VirtIO 1.2 §2.7.5)
#: every register of the transport (names of the extracted constants)
REGISTERS = (
    "regMagicValue", "regVersion", "regDeviceId", "regVendorId", "regDeviceFeatures",
    "regDeviceFeaturesSel", "regDriverFeatures", "regDriverFeaturesSel", "regQueueSel",
    "regQueueNumMax", "regQueueNum", "regQueueReady", "regQueueNotify", "regInterruptStatus",
    "regInterruptAck", "regStatus", "regQueueDescLow", "regQueueDescHigh", "regQueueDriverLow",
    "regQueueDriverHigh", "regQueueDeviceLow", "regQueueDeviceHigh", "regConfigGeneration",
)


class RandomSource(Protocol):
    """What the generator needs from a random source (``random.Random`` or Hypothesis's)."""

    def random(self) -> float: ...
    def randrange(self, start: int, stop: int | None = None) -> int: ...
    def choice(self, seq: Any) -> Any: ...


@dataclass
class Stats:
    """Counters of one fuzzing run."""

    steps: int = 0
    traces: int = 0
    writes: int = 0
    reads: int = 0
    notifies: int = 0
    requests_served: int = 0
    activations: int = 0
    activations_refused: int = 0
    device_errors: int = 0
    accesses: int = 0


class AdversarialMemory:
    """Guest RAM as the device sees it under a hostile guest: every load returns values drawn
    from the random source (biased to the boundaries the device checks), stores are dropped.
    Accesses outside RAM fail as the shim's bounds-checked accessors do."""

    def __init__(self, r: RandomSource, base: int, size: int):
        self.r, self.base, self.size = r, base, size
        #: hints from the harness: the notified queue's next available index and size
        self.next_avail = 0
        self.num = 1
        self.idx_addr = -1

    def _in_ram(self, gpa: int, length: int) -> None:
        if not (self.base <= gpa and gpa + length <= self.base + self.size):
            raise GuestMemoryError(f"guest range [{gpa:#x}, +{length:#x}) outside RAM", 14)

    def value(self, bits: int, near: int = 0) -> int:
        """A value the guest placed in memory: boundaries around ``near``, extremes, random."""
        r = self.r
        x = r.random()
        top = (1 << bits) - 1
        if x < 0.45 and near:
            return (near + r.randrange(-2, 3)) & top
        if x < 0.6:
            return int(r.choice((0, 1, top, top >> 1, top - 1))) & top
        if x < 0.75:
            return r.randrange(0, 8)
        return r.randrange(0, top + 1)

    def hostile_index(self, num: int) -> int:
        """A descriptor index at the edge of the table (size-1, size, size+1) or beyond."""
        r = self.r
        if r.random() < 0.6:
            return (num + r.randrange(-1, 2)) & U16
        return self.value(16, num)

    def read(self, gpa: int, length: int) -> bytes:
        """A ring load: 2 bytes (available index or ring entry) or a 16-byte descriptor.
        Mostly plausible values (so chains get served and the device goes on touching memory),
        otherwise hostile ones."""
        self._in_ram(gpa, length)
        r = self.r
        plausible = r.random() < 0.7
        num = max(self.num, 1)
        if length == 2:
            if gpa == self.idx_addr:
                v = (self.next_avail + r.randrange(0, 4)) & U16 if plausible else \
                    self.value(16, self.next_avail + num)
            else:
                v = r.randrange(0, num) & U16 if plausible else self.hostile_index(num)
            return v.to_bytes(2, "little")
        if length == 16:
            if plausible:
                blen = int(r.choice((0, 1, 16, 512, 4096)))
                addr = self.base + r.randrange(0, self.size - blen + 1)
                flags = int(r.choice((0, 1, 2, 3)))
                nxt = r.randrange(0, num) & U16
            else:
                end = self.base + self.size
                addr = self.value(64, int(r.choice((end, self.base, end - 0x200))))
                blen, flags = self.value(32, 512), self.value(16, 1) & 0x7
                nxt = self.hostile_index(num)
            return _DESC.pack(addr & U64, blen, flags, nxt)
        return bytes(length)

    def write(self, gpa: int, data: bytes) -> None:
        """A store of the device (used ring): checked against RAM, then dropped."""
        self._in_ram(gpa, len(data))

    def pread_from(self, fd: int, gpa: int, length: int, file_offset: int) -> int:
        """A buffer the device fills: checked against RAM, then dropped."""
        self._in_ram(gpa, length)
        return length

    def pwrite_to(self, fd: int, gpa: int, length: int, file_offset: int) -> int:
        """A buffer the device reads: checked against RAM, then dropped."""
        self._in_ram(gpa, length)
        return length


class TouchAllBackend:
    """A device type that accepts any chain and touches every buffer of it in full (through
    the monitored accessors), so every buffer the transport hands out is checked."""

    device_id = DEVICE_ID_BLK
    features = DEVICE_FEATURES

    def bind(self, model: ModuleType) -> None:
        pass

    def config_read(self, offset: int, size: int) -> int:
        return 0

    def config_write(self, offset: int, size: int, value: int) -> None:
        pass

    def process(self, chain: list[Any], buffers: Any, queue: int) -> int:
        written = 0
        for d in chain:
            if d.writable:
                written += buffers.read_file_into(-1, d.addr, d.length, 0)
            else:
                buffers.write_file_from(-1, d.addr, d.length, 0)
        return written & U32

    def reset(self) -> None:
        pass


@dataclass
class Harness:
    """One model under test with its monitors; runs traces drawn from a random source.

    Each trace drives a fresh :class:`~mvtool.vmm.virtio_mmio.VirtioMmioDevice` (the device
    the VMM runs) over :class:`AdversarialMemory`, with a record-only access monitor.
    """

    model: ModuleType
    stats: Stats = field(default_factory=Stats)
    violations: list[Violation] = field(default_factory=list)
    outside: list[tuple[int, str]] = field(default_factory=list)
    max_recorded: int = 20

    def __post_init__(self) -> None:
        c = lambda n: const(self.model, n)
        self.r_status = c("regStatus")
        self.r_sel = c("regQueueSel")
        self.r_num = c("regQueueNum")
        self.r_ready = c("regQueueReady")
        self.r_notify = c("regQueueNotify")
        self.r_dfsel = c("regDriverFeaturesSel")
        self.r_df = c("regDriverFeatures")
        self.r_ack = c("regInterruptAck")
        self.queue_addr_regs = [c(n) for n in (
            "regQueueDescLow", "regQueueDescHigh", "regQueueDriverLow", "regQueueDriverHigh",
            "regQueueDeviceLow", "regQueueDeviceHigh")]
        self.all_regs = sorted({c(n) for n in REGISTERS})
        self.num_max = c("queueNumMax")
        self.driver_ok = c("statusDriverOk")
        self.active = c("statusActive")
        self.total_violations = 0
        self.total_outside = 0

    def run_trace(self, r: RandomSource, steps: int) -> None:
        """Run ``steps`` steps on a fresh device with a RAM range drawn from ``r``."""
        ram_base, ram_size = _draw_ram(r)
        mem = AdversarialMemory(r, ram_base, ram_size)
        acc = AccessMonitor(record_only=True, max_recorded=self.max_recorded)
        dev = VirtioMmioDevice(mem, lambda _level: None, TouchAllBackend(), model=self.model,
                               ram_base=ram_base, ram_size=ram_size, monitor=acc)
        mon = StateMonitor(self.model, max_recorded=self.max_recorded)
        mon.check_state(dev.state, "initState")
        tr = _Trace(self, r, dev, mem, mon, ram_base, ram_size)
        with quiet_device_log():
            for _ in range(steps):
                tr.step()
        st = self.stats
        st.traces += 1
        st.steps += steps
        st.accesses += sum(acc.accesses.values())
        st.activations += dev.activations
        st.requests_served += dev.requests
        st.device_errors += len(dev.device_errors)
        self.total_violations += mon.total_violations
        self.total_outside += acc.violation_count
        room = self.max_recorded - len(self.violations)
        if room > 0:
            self.violations.extend(mon.violations[:room])
        room = self.max_recorded - len(self.outside)
        if room > 0:
            self.outside.extend((st.traces, str(v)) for v in acc.violations[:room])

    @property
    def failed(self) -> bool:
        """Whether any monitor reported a violation."""
        return self.total_violations > 0 or self.total_outside > 0


def _draw_ram(r: RandomSource) -> tuple[int, int]:
    """A valid guest-RAM range: usually at 0, sometimes high up against the top of the
    64-bit space (where a careless range check wraps)."""
    size = int(r.choice((1 << 20, 4 << 20, 64 << 20, 0x10000)))
    x = r.random()
    if x < 0.7:
        base = 0
    elif x < 0.85:
        base = r.randrange(1, 1 << 32) & ~0xFFF
    else:
        base = ((1 << 64) - size - int(r.choice((1, 0x1000, 0x10_0000)))) & ~0xF
    return base, size


class _Trace:
    """One trace: the device, its monitors and the driver's pending plan."""

    def __init__(self, h: Harness, r: RandomSource, dev: VirtioMmioDevice,
                 mem: AdversarialMemory, mon: StateMonitor, ram_base: int, ram_size: int):
        self.h, self.r, self.dev, self.mem, self.mon = h, r, dev, mem, mon
        self.ram_base, self.ram_size = ram_base, ram_size
        self.plan: list[tuple[int, int]] = []

    # -- transitions ---------------------------------------------------------------------------
    def write(self, off: int, v: int) -> None:
        h, dev = self.h, self.dev
        pre = dev.state
        if off == h.r_notify:
            h.stats.notifies += 1
            if v < 2:
                q = h.model.queueAt(pre, v)
                self.mem.next_avail = dev.last_avail[v]
                self.mem.num = int(q.num)
                self.mem.idx_addr = int(h.model.availIdxAddr(q))
            dev.write(off, 4, v)
            self.mon.device_step(pre, dev.state, f"notify {v:#x}")
            return
        dev.write(off, 4, v)
        post = dev.state
        h.stats.writes += 1
        self.mon.write(pre, off, v, post)
        if off == h.r_status and v == h.active and int(post.status) != h.active:
            h.stats.activations_refused += 1
        if int(post.status) == 0:
            self.plan.clear()

    def read(self, off: int) -> None:
        self.h.stats.reads += 1
        self.mon.read(self.dev.state, off, self.dev.read(off, 4))

    # -- the driver ----------------------------------------------------------------------------
    def step(self) -> None:
        r, h = self.r, self.h
        status = int(self.dev.state.status)
        if self.plan and r.random() < 0.85:
            off, v = self.plan.pop(0)
            self.write(off, v)
            return
        x = r.random()
        active = status == h.active
        if active and x < 0.6:
            self.write(h.r_notify, int(r.choice((0, 0, 0, 1, 1, 1, 2, U32))))
        elif active and x < 0.72:
            self.hostile()
        elif x < 0.75:
            self.protocol(status)
        elif x < 0.82:
            self.read(int(r.choice(h.all_regs)))
        elif x < 0.84:
            self.write(h.r_status, 0)
        elif x < 0.86:
            self.write(h.r_ack, r.randrange(0, 4))
        else:
            self.write(int(r.choice(h.all_regs)), self.value())

    def value(self) -> int:
        r = self.r
        x = r.random()
        if x < 0.5:
            return r.choice((0, 1, 2, 3, 4, 8, 11, 15, 64, 128, 0x8F, 0xFF, 0x100, 0x200,
                             0xFFFF, 0x1_0000, self.h.num_max, self.h.num_max * 2, U32,
                             0x8000_0000, self.ram_size, self.ram_base & U32))
        return r.randrange(0, U32 + 1)

    def hostile(self) -> None:
        """A CVE-2026-5747 rewrite after activation, or a stray queue selector."""
        r, h = self.r, self.h
        x = r.random()
        if x < 0.2:
            self.write(h.r_sel, r.choice((0, 1, 2, U32)))
        elif x < 0.45:
            self.write(h.r_num, r.choice((0, 3, 0xFFFF, h.num_max * 2, h.num_max, 1, U32)))
        elif x < 0.75:
            off = r.choice(h.queue_addr_regs)
            self.write(off, r.choice((0, 0x1000, U32, (self.ram_size - 16) & U32,
                                      (self.ram_base + self.ram_size) & U32,
                                      (self.ram_base + self.ram_size) >> 32 & U32, 1, 0x8000)))
        elif x < 0.9:
            self.write(h.r_ready, r.choice((0, 1, 2)))
        else:
            self.write(h.r_status, r.choice((0x8F, 0x4F, 0x0F, 0x07, 0x1F, 0xFF)))

    def protocol(self, status: int) -> None:
        """The next step of the driver initialisation (VirtIO 1.2 §3.1.1), with mistakes."""
        r, h = self.r, self.h
        if status == 0:
            self.write(h.r_status, 1)
        elif status == 1:
            self.write(h.r_status, 3)
        elif status == 3:
            feat = DEVICE_FEATURES if r.random() < 0.8 else r.randrange(0, 1 << 40)
            if r.random() < 0.1:
                feat &= ~(1 << 32)
            self.plan = [(h.r_dfsel, 0), (h.r_df, feat & U32), (h.r_dfsel, 1),
                         (h.r_df, feat >> 32 & U32), (h.r_status, 11)]
        elif status == 11:
            self.plan = self.layout_plan() + [(h.r_status, 15)]
        elif status == const(h.model, "statusActive"):
            self.write(h.r_notify, r.choice((0, 1)))
        else:
            self.write(h.r_status, 0)

    def layout_plan(self) -> list[tuple[int, int]]:
        """Queue programming: valid layouts mostly, each kind of defect sometimes."""
        r, h = self.r, self.h
        plan: list[tuple[int, int]] = []
        span = max(self.ram_size - 0x6000, 0x1000)
        queues = r.choice(((0,), (0, 1), (0, 1), (1,)))
        for qi in queues:
            x = r.random()
            num = 1 << r.randrange(0, 9)
            if x < 0.05:
                num = r.choice((0, 3, h.num_max * 2, 0xFFFF))
            base = self.ram_base + (r.randrange(0, span) & ~0xFFF)
            desc, drv, dev = base, base + 16 * num, base + 16 * num + 2 * num + 6
            dev = (dev + 3) & ~3
            if 0.05 <= x < 0.1:
                desc = r.choice((self.ram_base + self.ram_size, U64 & ~0xF, desc + 8))
            elif 0.1 <= x < 0.15:
                dev = drv
            plan += [(h.r_sel, qi), (h.r_num, num)]
            for (lo, hi), a in zip(((0, 1), (2, 3), (4, 5)), (desc, drv, dev), strict=True):
                plan += [(h.queue_addr_regs[lo], a & U32), (h.queue_addr_regs[hi], a >> 32 & U32)]
            plan.append((h.r_ready, 1))
        return plan


def fuzz(model: ModuleType, steps: int, seed: int, trace_len: int = 200) -> tuple[Harness, float]:
    """Run about ``steps`` steps in traces of ``trace_len``; returns the harness and the
    elapsed seconds."""
    h = Harness(model)
    rng = random.Random(seed)
    with quiet_device_log():
        t0 = time.perf_counter()
        done = 0
        while done < steps:
            n = min(trace_len, steps - done)
            h.run_trace(rng, n)
            done += n
        return h, time.perf_counter() - t0


@contextlib.contextmanager
def quiet_device_log() -> Iterator[None]:
    """Silence the device's per-error log lines: a hostile guest provokes thousands of them,
    and the monitors count what matters."""
    logger = logging.getLogger("mvtool.vmm")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


# -- CLI -----------------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    """``mvtool fuzz`` options."""
    p.add_argument("--steps", type=int, default=100_000, help="steps to run (default 100000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--trace-len", type=int, default=200,
                   help="steps per trace before the device is recreated (default 200)")
    p.add_argument("--model", choices=("verified", "vulnerable"), default="verified",
                   help="extracted model to fuzz (default verified)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    """Fuzz; exit 0 when no monitor reported a violation, 1 otherwise."""
    from mvtool.attack import load_model

    if args.steps <= 0:
        raise MvtoolError("--steps must be positive")
    if args.trace_len <= 0:
        raise MvtoolError("--trace-len must be positive")
    model = load_model(args.model)
    h, secs = fuzz(model, args.steps, args.seed, args.trace_len)
    st = h.stats
    rate = st.steps / secs if secs > 0 else 0.0
    result = {
        "model": args.model, "seed": args.seed, "steps": st.steps, "traces": st.traces,
        "seconds": round(secs, 3), "steps_per_second": round(rate, 1),
        "writes": st.writes, "reads": st.reads, "activations": st.activations,
        "activations_refused": st.activations_refused, "notifies": st.notifies,
        "requests_served": st.requests_served,
        "device_errors": st.device_errors, "guest_memory_accesses": st.accesses,
        "state_violations": h.total_violations, "accesses_outside": h.total_outside,
        "first_violations": [v.as_dict() for v in h.violations[:10]],
        "first_accesses_outside": [{"trace": t, "access": a} for t, a in h.outside[:10]],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"fuzz {args.model} model: {st.steps} steps in {st.traces} traces, "
              f"{secs:.2f} s ({rate:,.0f} steps/s), seed {args.seed}")
        print(f"  {st.writes} writes, {st.reads} reads, {st.activations} activations "
              f"({st.activations_refused} refused), {st.notifies} notifies, "
              f"{st.requests_served} requests served, {st.device_errors} device errors, "
              f"{st.accesses} guest-memory accesses checked")
        print(f"  state violations: {h.total_violations}, accesses outside validated "
              f"regions: {h.total_outside}")
        for v in h.violations[:5]:
            print(f"    {v}")
        for t, a in h.outside[:5]:
            print(f"    trace {t}: {a}")
    return 1 if h.failed else 0


__all__ = ["AdversarialMemory", "Harness", "Stats", "TouchAllBackend", "fuzz"]
