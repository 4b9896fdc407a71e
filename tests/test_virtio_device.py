"""The virtio-mmio device and the virtio-blk backend against the extracted model.

Guest RAM is real (a KVM VM's memory through the C shim); the "driver" is this file, writing
registers through the device's bus interface and placing rings and descriptors in guest RAM,
as a hostile guest could.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import struct
import sys
import types
from pathlib import Path

import pytest
from mvtool.vmm.access_log import (
    AccessKind,
    AccessMonitor,
    ContainmentViolation,
    QueueRegions,
    Region,
)
from mvtool.vmm.virtio_blk import (
    VIRTIO_BLK_F_FLUSH,
    VIRTIO_BLK_F_RO,
    VIRTIO_F_VERSION_1,
    VirtioBlkBackend,
)
from mvtool.vmm.virtio_mmio import VirtioMmioDevice

KVM = "/dev/kvm"
RAM = 4 << 20
SECTORS = 64

# Register offsets (VirtIO 1.2 §4.2.2), as a driver knows them.
MAGIC, VERSION, DEVICE_ID, DEV_FEATURES, DEV_FEATURES_SEL = 0x0, 0x4, 0x8, 0x10, 0x14
DRV_FEATURES, DRV_FEATURES_SEL, QUEUE_SEL, QUEUE_NUM_MAX, QUEUE_NUM = 0x20, 0x24, 0x30, 0x34, 0x38
QUEUE_READY, QUEUE_NOTIFY, INT_STATUS, INT_ACK, STATUS = 0x44, 0x50, 0x60, 0x64, 0x70
DESC_LO, DESC_HI, DRIVER_LO, DRIVER_HI, DEVICE_LO, DEVICE_HI = 0x80, 0x84, 0x90, 0x94, 0xA0, 0xA4
ACK, DRIVER, DRIVER_OK, FEATURES_OK, NEEDS_RESET = 1, 2, 4, 8, 64
NEXT, WRITE, INDIRECT = 1, 2, 4
T_IN, T_OUT, T_FLUSH, T_GET_ID = 0, 1, 4, 8
S_OK, S_IOERR, S_UNSUPP = 0, 1, 2

QSIZE = 8
DESC, AVAIL, USED = 0x10000, 0x11000, 0x12000
HDR, DATA, STATUS_BYTE = 0x20000, 0x21000, 0x30000


def _model() -> types.ModuleType:
    try:
        return importlib.import_module("mvtool._extracted.model")
    except ImportError:
        pytest.skip("the extracted model py/mvtool/_extracted/model.py is not generated "
                    "(python -m mvtool extract)")


@pytest.fixture(scope="module")
def model() -> types.ModuleType:
    return _model()


@pytest.fixture(scope="module")
def vm():
    if not os.access(KVM, os.R_OK | os.W_OK):
        pytest.skip(f"{KVM} is not available: guest RAM comes from a real KVM VM")
    from mvtool.vmm.kvm import Vm
    with Vm(KVM) as machine:
        machine.set_memory(RAM)
        yield machine


@pytest.fixture
def mem(vm):
    memory = vm.memory
    memory.write(0, bytes(0x40000))  # rings and buffers of the previous test
    return memory


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(range(256)) * (SECTORS * 2))
    return path


class Line:
    """The interrupt line as the device drives it."""

    def __init__(self) -> None:
        self.level = False
        self.raised = 0

    def __call__(self, level: bool) -> None:
        self.level = level
        self.raised += level


class Driver:
    """A minimal virtio-mmio driver for one queue, written against the spec, not the model."""

    def __init__(self, dev: VirtioMmioDevice, mem):
        self.dev, self.mem = dev, mem
        self.avail_idx = 0
        self.used_seen = 0

    def r(self, off: int) -> int:
        return self.dev.read(off, 4)

    def w(self, off: int, value: int) -> None:
        self.dev.write(off, 4, value)

    def negotiate(self) -> None:
        self.w(STATUS, 0)
        self.w(STATUS, ACK)
        self.w(STATUS, ACK | DRIVER)
        self.w(DRV_FEATURES_SEL, 1)
        self.w(DRV_FEATURES, VIRTIO_F_VERSION_1 >> 32)
        self.w(DRV_FEATURES_SEL, 0)
        self.w(DRV_FEATURES, VIRTIO_BLK_F_FLUSH)
        self.w(STATUS, ACK | DRIVER | FEATURES_OK)
        assert self.r(STATUS) == ACK | DRIVER | FEATURES_OK

    def setup_queue(self, q: int = 0, num: int = QSIZE, desc: int = DESC, avail: int = AVAIL,
                    used: int = USED) -> None:
        self.w(QUEUE_SEL, q)
        self.w(QUEUE_NUM, num)
        for lo, addr in ((DESC_LO, desc), (DRIVER_LO, avail), (DEVICE_LO, used)):
            self.w(lo, addr & 0xFFFF_FFFF)
            self.w(lo + 4, addr >> 32)
        self.w(QUEUE_READY, 1)

    def start(self) -> None:
        self.negotiate()
        self.setup_queue()
        self.w(STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK)
        self.avail_idx = self.used_seen = 0

    def put_desc(self, i: int, addr: int, length: int, flags: int = 0, nxt: int = 0) -> None:
        self.mem.write(DESC + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))

    def publish(self, head: int, q: int = 0) -> None:
        self.mem.write_u16(AVAIL + 4 + 2 * (self.avail_idx % QSIZE), head)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self.mem.write_u16(AVAIL + 2, self.avail_idx)
        self.w(QUEUE_NOTIFY, q)

    def used(self) -> list[tuple[int, int]]:
        idx = self.mem.read_u16(USED + 2)
        out = []
        while self.used_seen != idx:
            slot = USED + 4 + 8 * (self.used_seen % QSIZE)
            out.append(struct.unpack("<II", self.mem.read(slot, 8)))
            self.used_seen = (self.used_seen + 1) & 0xFFFF
        return out

    def blk(self, req_type: int, sector: int, data_len: int, *, write_data: bytes = b"",
            device_writes_data: bool | None = None) -> tuple[int, list[tuple[int, int]]]:
        """One request as Linux lays it out: header, data (if any), status."""
        self.mem.write(HDR, struct.pack("<IIQ", req_type, 0, sector))
        self.mem.write_u8(STATUS_BYTE, 0xFF)
        if write_data:
            self.mem.write(DATA, write_data)
        if data_len:
            writes = req_type != T_OUT if device_writes_data is None else device_writes_data
            self.put_desc(0, HDR, 16, NEXT, 1)
            self.put_desc(1, DATA, data_len, NEXT | (WRITE if writes else 0), 2)
            self.put_desc(2, STATUS_BYTE, 1, WRITE)
        else:
            self.put_desc(0, HDR, 16, NEXT, 1)
            self.put_desc(1, STATUS_BYTE, 1, WRITE)
        self.publish(0)
        return self.mem.read_u8(STATUS_BYTE), self.used()


def make(model, mem, disk: Path, *, readonly: bool = False, monitor: AccessMonitor | None = None,
         device_model=None):
    line = Line()
    backend = VirtioBlkBackend(disk, readonly=readonly)
    dev = VirtioMmioDevice(mem, line, backend, model=device_model or model, ram_size=RAM,
                           monitor=monitor)
    return dev, Driver(dev, mem), line


# --- identity, handshake, config space ---------------------------------------------------

def test_identity_and_config_space(model, mem, disk):
    dev, drv, _ = make(model, mem, disk)
    assert drv.r(MAGIC) == 0x74726976
    assert drv.r(VERSION) == 2
    assert drv.r(DEVICE_ID) == 2
    drv.w(DEV_FEATURES_SEL, 1)
    assert drv.r(DEV_FEATURES) & 1  # VERSION_1 is bit 32
    drv.w(DEV_FEATURES_SEL, 0)
    assert drv.r(DEV_FEATURES) & VIRTIO_BLK_F_FLUSH
    assert not drv.r(DEV_FEATURES) & VIRTIO_BLK_F_RO
    # capacity, u64 at config offset 0, in any access width
    assert dev.read(0x100, 8) == SECTORS
    assert dev.read(0x100, 4) | dev.read(0x104, 4) << 32 == SECTORS
    assert dev.read(0x10C, 4) == dev.backend.seg_max > 0
    # the configuration space is read-only
    dev.write(0x100, 8, 1)
    assert dev.read(0x100, 8) == SECTORS and dev.backend.config_writes_ignored == 1


def test_ram_defaults_to_all_of_guest_memory(model, mem, disk):
    dev = VirtioMmioDevice(mem, Line(), VirtioBlkBackend(disk), model=model)
    assert (dev.state.ramBase, dev.state.ramSize) == (0, mem.size)


def test_bad_register_width_is_ignored(model, mem, disk):
    dev, drv, _ = make(model, mem, disk)
    assert dev.read(MAGIC, 1) == 0
    assert dev.read(MAGIC + 2, 4) == 0
    dev.write(STATUS, 1, ACK)
    assert drv.r(STATUS) == 0
    assert dev.rejected_accesses[(STATUS, 1)] == 1


def test_readonly_backend_offers_ro(model, mem, disk):
    _dev, drv, _ = make(model, mem, disk, readonly=True)
    assert drv.r(DEV_FEATURES) & VIRTIO_BLK_F_RO


# --- requests ---------------------------------------------------------------------------

def test_write_read_round_trip(model, mem, disk):
    dev, drv, line = make(model, mem, disk)
    drv.start()
    assert dev.state.status == ACK | DRIVER | FEATURES_OK | DRIVER_OK
    pattern = bytes((i * 7 + 3) & 0xFF for i in range(1024))
    status, used = drv.blk(T_OUT, 5, len(pattern), write_data=pattern)
    assert (status, used) == (S_OK, [(0, 1)])
    assert line.level and drv.r(INT_STATUS) & 1
    drv.w(INT_ACK, 1)
    assert not line.level
    assert disk.read_bytes()[5 * 512:5 * 512 + 1024] == pattern
    mem.write(DATA, bytes(1024))
    status, used = drv.blk(T_IN, 5, 1024)
    assert (status, used) == (S_OK, [(0, 1025)])
    assert mem.read(DATA, 1024) == pattern
    assert dev.monitor.violation_count == 0
    assert dev.monitor.accesses[AccessKind.BUFFER_WRITE] >= 2


def test_get_id_flush_and_unsupported(model, mem, disk):
    dev, drv, _ = make(model, mem, disk)
    drv.start()
    status, used = drv.blk(T_GET_ID, 0, 20)
    assert status == S_OK and used == [(0, 21)]
    assert mem.read(DATA, 20) == b"microvmm-blk".ljust(20, b"\0")
    assert drv.blk(T_FLUSH, 0, 0)[0] == S_OK
    assert drv.blk(99, 0, 0)[0] == S_UNSUPP
    assert dev.backend.counts == {"get-id": 1, "flush": 1, "unsupported": 1}


def test_readonly_write_is_ioerr_and_device_keeps_running(model, mem, disk):
    before = disk.read_bytes()
    dev, drv, _ = make(model, mem, disk, readonly=True)
    drv.start()
    status, used = drv.blk(T_OUT, 1, 512, write_data=b"\xAA" * 512)
    assert status == S_IOERR and used == [(0, 1)]
    assert disk.read_bytes() == before
    assert dev.state.status == ACK | DRIVER | FEATURES_OK | DRIVER_OK
    assert drv.blk(T_IN, 1, 512)[0] == S_OK
    assert mem.read(DATA, 512) == before[512:1024]


@pytest.mark.parametrize("sector,length", [(SECTORS, 512), (SECTORS - 1, 1024), (2**64 - 1, 512),
                                           (0, 100)])
def test_sector_range_outside_disk_is_ioerr(model, mem, disk, sector, length):
    """Out-of-range or partial-sector transfers complete with IOERR (as QEMU and Firecracker
    do) and never touch the file; the device stays usable."""
    before = disk.read_bytes()
    dev, drv, _ = make(model, mem, disk)
    drv.start()
    assert drv.blk(T_OUT, sector, length, write_data=b"\x55" * length)[0] == S_IOERR
    assert drv.blk(T_IN, sector, length)[0] == S_IOERR
    assert disk.read_bytes() == before
    assert not dev.state.status & NEEDS_RESET


def test_data_direction_mismatch_is_ioerr(model, mem, disk):
    before = disk.read_bytes()
    _dev, drv, _ = make(model, mem, disk)
    drv.start()
    mem.write(DATA, b"\x11" * 512)
    assert drv.blk(T_IN, 0, 512, device_writes_data=False)[0] == S_IOERR
    assert mem.read(DATA, 512) == b"\x11" * 512  # a device-readable buffer is not written
    assert drv.blk(T_OUT, 0, 512, device_writes_data=True)[0] == S_IOERR
    assert disk.read_bytes() == before


def test_scattered_data_buffers_and_a_batch_per_notify(model, mem, disk):
    """A request whose data is spread over several buffers (as Linux sends them: one per page)
    moves consecutive sectors to and from the buffers in chain order; several chains published
    before one notify are all served by it, with one interrupt."""
    dev, drv, line = make(model, mem, disk)
    drv.start()
    bufs = [(0x24000, 1024), (0x22000, 512), (0x26000, 1536)]
    disk_bytes = disk.read_bytes()

    def chain(head: int, hdr: int, status: int, req_type: int, sector: int) -> None:
        mem.write(hdr, struct.pack("<IIQ", req_type, 0, sector))
        drv.put_desc(head, hdr, 16, NEXT, head + 1)
        for i, (addr, length) in enumerate(bufs):
            drv.put_desc(head + 1 + i, addr, length,
                         NEXT | (WRITE if req_type == T_IN else 0), head + 2 + i)
        drv.put_desc(head + 1 + len(bufs), status, 1, WRITE)
        mem.write_u16(AVAIL + 4 + 2 * (drv.avail_idx % QSIZE), head)
        drv.avail_idx += 1

    chain(0, HDR, STATUS_BYTE, T_IN, 2)
    mem.write_u16(AVAIL + 2, drv.avail_idx)
    drv.w(QUEUE_NOTIFY, 0)
    assert drv.used() == [(0, 3073)] and mem.read_u8(STATUS_BYTE) == S_OK
    got = b"".join(mem.read(a, n) for a, n in bufs)
    assert got == disk_bytes[2 * 512:2 * 512 + 3072]
    # write them back elsewhere with a gather, while a second read is queued behind it
    drv.w(INT_ACK, 1)
    raised = line.raised
    chain(0, HDR, STATUS_BYTE, T_OUT, 20)
    mem.write(HDR + 0x100, struct.pack("<IIQ", T_FLUSH, 0, 0))
    drv.put_desc(5, HDR + 0x100, 16, NEXT, 6)
    drv.put_desc(6, STATUS_BYTE + 1, 1, WRITE)
    mem.write_u16(AVAIL + 4 + 2 * (drv.avail_idx % QSIZE), 5)
    drv.avail_idx += 1
    mem.write_u16(AVAIL + 2, drv.avail_idx)
    drv.w(QUEUE_NOTIFY, 0)
    assert drv.used() == [(0, 1), (5, 1)]
    assert line.raised == raised + 1
    assert disk.read_bytes()[20 * 512:20 * 512 + 3072] == got
    assert dev.backend.counts == {"in": 1, "out": 1, "flush": 1}
    assert dev.monitor.violation_count == 0


# --- malformed chains: DEVICE_NEEDS_RESET, no crash -----------------------------------------

def _expect_needs_reset(dev, drv, line, disk_before: bytes, disk: Path) -> None:
    assert dev.state.status & NEEDS_RESET
    assert drv.r(INT_STATUS) & 2  # configuration-change interrupt
    assert line.level
    assert dev.device_errors
    assert disk.read_bytes() == disk_before
    assert dev.monitor.violation_count == 0
    # the device stopped: a further notify does nothing
    requests = dev.requests
    drv.w(QUEUE_NOTIFY, 0)
    assert dev.requests == requests
    # and a reset brings it back
    drv.start()
    assert drv.blk(T_IN, 0, 512)[0] == S_OK


def _chain_case(drv: Driver, case: str) -> int:
    """Lay out a malformed request; return the head index to publish."""
    drv.mem.write(HDR, struct.pack("<IIQ", T_OUT, 0, 0))
    if case == "head out of range":
        return QSIZE
    if case == "next out of range":
        drv.put_desc(0, HDR, 16, NEXT, QSIZE + 3)
        return 0
    if case == "cycle":
        drv.put_desc(0, HDR, 16, NEXT, 1)
        drv.put_desc(1, DATA, 512, NEXT, 0)
        return 0
    if case == "indirect":
        drv.put_desc(0, DESC + 0x400, 32, INDIRECT)
        return 0
    if case == "buffer outside RAM":
        drv.put_desc(0, HDR, 16, NEXT, 1)
        drv.put_desc(1, RAM - 256, 512, NEXT, 2)
        drv.put_desc(2, STATUS_BYTE, 1, WRITE)
        return 0
    if case == "buffer wraps the address space":
        drv.put_desc(0, 2**64 - 8, 16, NEXT, 1)
        drv.put_desc(1, STATUS_BYTE, 1, WRITE)
        return 0
    if case == "header too short":
        drv.put_desc(0, HDR, 8, NEXT, 1)
        drv.put_desc(1, STATUS_BYTE, 1, WRITE)
        return 0
    if case == "no writable status":
        drv.put_desc(0, HDR, 16, NEXT, 1)
        drv.put_desc(1, STATUS_BYTE, 1, 0)
        return 0
    if case == "lone descriptor":
        drv.put_desc(0, HDR, 16, 0)
        return 0
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["head out of range", "next out of range", "cycle", "indirect",
                                  "buffer outside RAM", "buffer wraps the address space",
                                  "header too short", "no writable status", "lone descriptor"])
def test_malformed_chain_sets_needs_reset(model, mem, disk, case):
    before = disk.read_bytes()
    dev, drv, line = make(model, mem, disk)
    drv.start()
    drv.publish(_chain_case(drv, case))
    assert drv.used() == []
    _expect_needs_reset(dev, drv, line, before, disk)


def test_avail_index_far_ahead_sets_needs_reset(model, mem, disk):
    before = disk.read_bytes()
    dev, drv, line = make(model, mem, disk)
    drv.start()
    mem.write_u16(AVAIL + 2, QSIZE + 1)
    drv.w(QUEUE_NOTIFY, 0)
    _expect_needs_reset(dev, drv, line, before, disk)


def test_hostile_avail_entries_stay_in_the_ring(model, mem, disk):
    """Available indices wrap at 2^16 and are reduced mod the queue size (VirtIO 1.2 §2.7.6)."""
    dev, drv, _ = make(model, mem, disk)
    drv.start()
    for _ in range(3 * QSIZE + 1):
        assert drv.blk(T_IN, 0, 512)[0] == S_OK
    assert dev.requests == 3 * QSIZE + 1
    assert dev.monitor.violation_count == 0


def test_used_ring_index_wraps(model, mem, disk):
    dev, drv, _ = make(model, mem, disk)
    drv.start()
    # Pretend 0xFFFE requests were already exchanged: both sides start near the wrap.
    dev.last_avail[0] = dev.next_used[0] = drv.avail_idx = drv.used_seen = 0xFFFE
    for _ in range(4):
        assert drv.blk(T_IN, 0, 512)[0] == S_OK
    assert mem.read_u16(USED + 2) == 2


# --- the lifecycle: activation, frozen configuration, reset ---------------------------------

def test_activation_snapshot_and_frozen_queue(model, mem, disk, caplog):
    dev, drv, _ = make(model, mem, disk)
    drv.start()
    regions = dev.monitor.active_regions
    assert regions == {0: QueueRegions(Region(DESC, 16 * QSIZE), Region(AVAIL, 6 + 2 * QSIZE),
                                       Region(USED, 6 + 8 * QSIZE))}
    caplog.set_level(logging.DEBUG, logger="mvtool.vmm.virtio_mmio")
    # CVE-2026-5747: rewrite the queue after DRIVER_OK; the model ignores it.
    drv.w(QUEUE_SEL, 0)
    drv.w(DESC_LO, 0x3000_0000)
    drv.w(QUEUE_NUM, 32768)
    drv.w(QUEUE_READY, 0)
    assert drv.r(DESC_LO) == DESC and drv.r(QUEUE_NUM) == QSIZE and drv.r(QUEUE_READY) == 1
    assert dev.ignored_writes["QueueDescLow"] == 1 and dev.ignored_writes["QueueNum"] == 1
    assert any("QueueDescLow" in r.getMessage() for r in caplog.records)
    assert drv.blk(T_IN, 0, 512)[0] == S_OK
    assert dev.monitor.violation_count == 0


def test_failed_activation_needs_reset(model, mem, disk):
    dev, drv, line = make(model, mem, disk)
    drv.negotiate()
    drv.setup_queue(desc=RAM - 64)  # descriptor table runs past the end of RAM
    drv.w(STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK)
    assert not dev.state.status & DRIVER_OK and dev.state.status & NEEDS_RESET
    assert line.level and dev.activations == 0


def test_reset_restarts_ring_indices(model, mem, disk):
    dev, drv, line = make(model, mem, disk)
    drv.start()
    assert drv.blk(T_IN, 0, 512)[0] == S_OK
    drv.w(STATUS, 0)
    assert dev.state.status == 0 and not line.level and dev.monitor.active_regions == {}
    mem.write(USED, bytes(6 + 8 * QSIZE))
    drv.start()
    assert drv.blk(T_IN, 0, 512) == (S_OK, [(0, 513)])
    assert dev.resets >= 2


# --- the monitor against a model that does not freeze the queue -----------------------------

def _unfrozen_model(model: types.ModuleType) -> types.ModuleType:
    """The extracted model with `queueConfigWritable` no longer requiring the configuring
    status: queue registers stay writable after DRIVER_OK (the bug of CVE-2026-5747)."""
    spec = importlib.util.spec_from_file_location("unfrozen_model", model.__file__)
    assert spec is not None and spec.loader is not None
    mutant = importlib.util.module_from_spec(spec)
    sys.modules["unfrozen_model"] = mutant  # dataclasses resolve annotations through it
    spec.loader.exec_module(mutant)
    is_configuring, is_active = mutant.isConfiguring, mutant.isActive
    queue_sel_valid = mutant.queueSelValid

    def queueConfigWritable(s):
        return bool((is_configuring(s) or is_active(s)) and queue_sel_valid(s))

    mutant.queueConfigWritable = queueConfigWritable
    return mutant


def _rewrite_desc_after_activation(dev, drv) -> None:
    drv.start()
    assert drv.blk(T_IN, 0, 512)[0] == S_OK
    drv.w(QUEUE_SEL, 0)
    drv.w(DESC_LO, 0x8000)  # a descriptor table the device never validated


def test_monitor_stops_an_unfrozen_model(model, mem, disk):
    dev, drv, _ = make(model, mem, disk, device_model=_unfrozen_model(model))
    _rewrite_desc_after_activation(dev, drv)
    assert dev.read(DESC_LO, 4) == 0x8000
    with pytest.raises(ContainmentViolation) as info:
        drv.blk(T_IN, 0, 512)
    assert "outside the regions validated at activation" in str(info.value)
    assert info.value.violation.access.kind is AccessKind.DESC_READ
    assert info.value.violation.access.gpa == 0x8000
    assert dev.monitor.violation_count == 1


def test_record_only_monitor_counts_and_the_shim_still_contains(model, mem, disk):
    monitor = AccessMonitor(record_only=True)
    dev, drv, _ = make(model, mem, disk, monitor=monitor, device_model=_unfrozen_model(model))
    _rewrite_desc_after_activation(dev, drv)
    drv.w(DESC_LO, 0)
    drv.w(DESC_HI, 0x1)  # 4 GiB: outside guest RAM altogether
    drv.blk(T_IN, 0, 512)
    assert monitor.violation_count >= 1
    assert "outside guest RAM" in monitor.violations[0].reason
    assert dev.state.status & NEEDS_RESET  # the shim refused the access: a device error


def test_monitor_unit():
    mon = AccessMonitor()
    mon.set_ram(0, 0x10000)
    mon.activate({0: QueueRegions(Region(0x1000, 0x80), Region(0x2000, 0x16),
                                  Region(0x3000, 0x46))})
    mon.check(AccessKind.DESC_READ, 0x1070, 16, 0)
    mon.check(AccessKind.BUFFER_WRITE, 0x8000, 0x8000, 0)
    for kind, gpa, length, queue in [(AccessKind.DESC_READ, 0x1080, 16, 0),
                                     (AccessKind.DESC_READ, 0x1078, 16, 0),
                                     (AccessKind.USED_WRITE, 0x2000, 2, 0),
                                     (AccessKind.AVAIL_READ, 0x2002, 2, 1),
                                     (AccessKind.BUFFER_READ, 0xFFFF, 2, 0),
                                     (AccessKind.BUFFER_READ, 2**64 - 1, 2, 0)]:
        with pytest.raises(ContainmentViolation):
            mon.check(kind, gpa, length, queue)
    assert mon.violation_count == 6
    mon.deactivate()
    with pytest.raises(ContainmentViolation):
        mon.check(AccessKind.DESC_READ, 0x1000, 16, 0)


# --- hostile guest: random registers and random ring contents ---------------------------------

_REGS = [DEV_FEATURES_SEL, DRV_FEATURES, DRV_FEATURES_SEL, QUEUE_SEL, QUEUE_NUM, QUEUE_READY,
         QUEUE_NOTIFY, INT_ACK, STATUS, DESC_LO, DESC_HI, DRIVER_LO, DRIVER_HI, DEVICE_LO,
         DEVICE_HI]


def _hostile_value(rng) -> int:
    return rng.choice([0, 1, 2, 3, 11, 15, QSIZE, QSIZE * 2, 0xFFFF, 0x1_0000, 0xFFFF_FFFF,
                       DESC, AVAIL, USED, RAM - 16, rng.getrandbits(32)])


def _hostile_step(rng, drv: Driver, mem) -> None:
    """One thing a hostile driver does: mostly near-valid, so that requests get processed."""
    action = rng.random()
    if action < 0.3:
        drv.w(rng.choice(_REGS), _hostile_value(rng))
    elif action < 0.55:
        addr = rng.choice([HDR, DATA, STATUS_BYTE, DESC, RAM - 8, RAM, 2**64 - 4,
                           rng.getrandbits(64)])
        length = rng.choice([0, 1, 16, 512, 1024, 0xFFFF_FFFF, rng.getrandbits(32)])
        flags = rng.choice([NEXT, NEXT | WRITE, WRITE, 0, rng.randrange(8)])
        drv.put_desc(rng.randrange(QSIZE), addr, length, flags, rng.randrange(QSIZE + 2))
    elif action < 0.65:
        mem.write(HDR, struct.pack("<IIQ", rng.choice([T_IN, T_OUT, T_FLUSH, T_GET_ID, 99]), 0,
                                   rng.choice([0, 1, SECTORS - 1, SECTORS, 2**64 - 1])))
    elif action < 0.75:
        mem.write_u16(AVAIL + 4 + 2 * rng.randrange(QSIZE), rng.randrange(QSIZE + 2))
    elif action < 0.9:
        drv.avail_idx = (drv.avail_idx + rng.choice([1, 1, 2, QSIZE + 1])) & 0xFFFF
        mem.write_u16(AVAIL + 2, drv.avail_idx)
        drv.w(QUEUE_NOTIFY, rng.choice([0, 0, 0, 1, 2]))
    else:
        ring = rng.choice([DESC, AVAIL, USED])
        mem.write(ring + rng.randrange(0, 0x100), rng.randbytes(rng.randrange(1, 32)))


def _valid_template(drv: Driver, mem) -> None:
    """A well-formed read request (header, data, status in descriptors 0-2) in every avail
    slot: the hostile steps perturb it."""
    mem.write(HDR, struct.pack("<IIQ", T_IN, 0, 1))
    drv.put_desc(0, HDR, 16, NEXT, 1)
    drv.put_desc(1, DATA, 512, NEXT | WRITE, 2)
    drv.put_desc(2, STATUS_BYTE, 1, WRITE)
    for slot in range(QSIZE):
        mem.write_u16(AVAIL + 4 + 2 * slot, 0)


def test_random_hostile_guest_never_leaves_the_validated_regions(model, mem, disk):
    """Random register writes (including queue rewrites after DRIVER_OK), descriptors, avail
    entries and ring bytes: with the verified model the enforcing monitor never fires, nothing
    raises, and the read-only disk is untouched. (The same traces make the unfrozen mutant
    leave the validated regions: see the next test.)"""
    import random

    rng = random.Random(5747)
    before = disk.read_bytes()
    requests = errors = 0
    for _ in range(60):
        dev, drv, _ = make(model, mem, disk, readonly=True)
        drv.start()
        _valid_template(drv, mem)
        for _ in range(60):
            _hostile_step(rng, drv, mem)
        assert dev.monitor.violation_count == 0
        requests += dev.requests
        errors += len(dev.device_errors)
    assert disk.read_bytes() == before
    assert requests > 0 and errors > 0  # the traces reach both outcomes


def test_random_hostile_guest_catches_the_unfrozen_model(model, mem, disk):
    import random

    rng = random.Random(5747)
    mutant = _unfrozen_model(model)
    violations = 0
    for _ in range(60):
        monitor = AccessMonitor(record_only=True)
        _dev, drv, _ = make(model, mem, disk, readonly=True, monitor=monitor,
                            device_model=mutant)
        drv.start()
        _valid_template(drv, mem)
        for _ in range(60):
            _hostile_step(rng, drv, mem)
        violations += monitor.violation_count
    assert violations > 0
