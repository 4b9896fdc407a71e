"""virtio-blk backed by a host file (VirtIO 1.2 §5.2).

The backend behind :class:`mvtool.vmm.virtio_mmio.VirtioMmioDevice`: it gets a descriptor chain
the transport already checked (indices, chain length, buffers inside guest RAM, all through the
extracted model) and executes the request it holds. Sector ranges are checked with the model's
``blkRangeOk`` and turned into file offsets with ``blkByteOffset``; payloads move between the
file and guest RAM inside the C shim (pread/pwrite straight into guest memory), never through
Python bytes.

Request layout (VirtIO 1.2 §5.2.6): a device-readable header ``{type u32, reserved u32,
sector u64}`` in the first descriptor, data descriptors, and a device-writable status byte in
the last descriptor.
"""

from __future__ import annotations

import logging
import os
import stat
import struct
from pathlib import Path
from types import ModuleType
from typing import Self

from mvtool.errors import MvtoolError
from mvtool.vmm.kvm import KvmError
from mvtool.vmm.virtio_mmio import Descriptor, DeviceFault, GuestBuffers, model_constant

log = logging.getLogger(__name__)

#: VirtIO device id of a block device (VirtIO 1.2 §5).
VIRTIO_ID_BLOCK = 2
#: Feature bits (VirtIO 1.2 §5.2.3, §6). RO and FLUSH also exist in the model
#: (``blkFeatureRo``, ``blkFeatureFlush``, ``featureVersion1``); bind() checks they agree.
VIRTIO_BLK_F_SEG_MAX = 1 << 2
VIRTIO_BLK_F_RO = 1 << 5
VIRTIO_BLK_F_FLUSH = 1 << 9
VIRTIO_F_VERSION_1 = 1 << 32

SECTOR_SIZE = 512
#: GET_ID answers with this id, zero-padded to 20 bytes (VirtIO 1.2 §5.2.6).
DEVICE_ID_LEN = 20
DEFAULT_SERIAL = b"microvmm-blk"

_HEADER = struct.Struct("<IIQ")  # type, reserved, sector
#: struct virtio_blk_config up to and including blk_size/topology (VirtIO 1.2 §5.2.4):
#: capacity u64, size_max u32, seg_max u32, geometry (u16, u8, u8), blk_size u32, ...
_CONFIG_LEN = 0x40


class VirtioBlkBackend:
    """A virtio-blk device over the file ``path`` (its size, rounded down to whole sectors, is
    the capacity). ``readonly`` opens the file read-only and offers VIRTIO_BLK_F_RO; writes are
    then completed with VIRTIO_BLK_S_IOERR (VirtIO 1.2 §5.2.6.2).

    Offered features: VERSION_1, FLUSH, SEG_MAX (``seg_max`` = queue size - 2, so that a request
    with its header and status fits a queue of the largest size) and RO when read-only.
    """

    device_id = VIRTIO_ID_BLOCK

    def __init__(self, path: str | os.PathLike[str], readonly: bool = False, *,
                 serial: bytes = DEFAULT_SERIAL):
        self.path = Path(path)
        self.readonly = readonly
        if len(serial) > DEVICE_ID_LEN:
            raise MvtoolError(f"virtio-blk serial longer than {DEVICE_ID_LEN} bytes: {serial!r}")
        self.serial = serial.ljust(DEVICE_ID_LEN, b"\0")
        try:
            fd = os.open(self.path, os.O_RDONLY if readonly else os.O_RDWR)
        except OSError as exc:
            raise MvtoolError(f"cannot open disk image {self.path}: {exc.strerror}") from exc
        try:
            st = os.fstat(fd)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
                raise MvtoolError(f"disk image {self.path} is not a regular file or block device")
            size = os.lseek(fd, 0, os.SEEK_END)
        except BaseException:
            os.close(fd)
            raise
        self.fd: int = fd
        #: disk size in 512-byte sectors
        self.capacity = size // SECTOR_SIZE
        self.features = (VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_SEG_MAX
                         | (VIRTIO_BLK_F_RO if readonly else 0))
        self.seg_max = 0
        self._model: ModuleType | None = None
        self._config = b""
        #: requests by type name, and payload bytes moved
        self.counts: dict[str, int] = {}
        self.bytes_read = 0
        self.bytes_written = 0
        self.errors = 0
        self.config_writes_ignored = 0

    # --- lifecycle -----------------------------------------------------------------------
    def bind(self, model: ModuleType) -> None:
        """Take the request checks and constants from ``model`` (the device's model)."""
        for name, expected in (("blkFeatureRo", VIRTIO_BLK_F_RO),
                               ("blkFeatureFlush", VIRTIO_BLK_F_FLUSH),
                               ("featureVersion1", VIRTIO_F_VERSION_1)):
            if model_constant(model, name) != expected:
                raise MvtoolError(f"model {model.__name__}: {name} is not {expected:#x}")
        self._model = model
        self._t_in = model_constant(model, "blkTypeIn")
        self._t_out = model_constant(model, "blkTypeOut")
        self._t_flush = model_constant(model, "blkTypeFlush")
        self._t_get_id = model_constant(model, "blkTypeGetId")
        self._s_ok = model_constant(model, "blkStatusOk")
        self._s_ioerr = model_constant(model, "blkStatusIoErr")
        self._s_unsupp = model_constant(model, "blkStatusUnsupported")
        self.seg_max = model_constant(model, "queueNumMax") - 2
        self._config = struct.pack("<QII", self.capacity, 0, self.seg_max).ljust(_CONFIG_LEN,
                                                                                 b"\0")

    def reset(self) -> None:
        """Nothing survives a reset on the backend side (requests complete synchronously)."""

    def close(self) -> None:
        """Close the backing file (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- configuration space (VirtIO 1.2 §5.2.4) ------------------------------------------
    def config_read(self, offset: int, size: int) -> int:
        """Little-endian read of the config structure; bytes past its end read as 0."""
        if offset < 0 or size <= 0:
            return 0
        chunk = self._config[offset:offset + size]
        return int.from_bytes(chunk, "little")

    def config_write(self, offset: int, size: int, value: int) -> None:
        """The block configuration is read-only here (no WCE/writeback toggling offered)."""
        self.config_writes_ignored += 1
        if self.config_writes_ignored == 1:
            log.debug("virtio-blk: ignored %d-byte config write at %#x (config is read-only)",
                      size, offset)

    # --- requests (VirtIO 1.2 §5.2.6) -----------------------------------------------------
    def process(self, chain: list[Descriptor], buffers: GuestBuffers, queue: int) -> int:
        """Execute the request in ``chain``; return the bytes written into guest buffers
        (payload plus the status byte). A chain without a readable header of at least 16 bytes
        first and a writable status byte last is malformed (DeviceFault)."""
        if len(chain) < 2:
            raise DeviceFault(f"queue {queue}: virtio-blk request of {len(chain)} descriptor(s), "
                              "needs a header and a status byte")
        header, status_desc, data = chain[0], chain[-1], chain[1:-1]
        if header.writable or header.length < _HEADER.size:
            raise DeviceFault(f"queue {queue}: virtio-blk header descriptor is "
                              f"{'device-writable' if header.writable else 'shorter than 16 bytes'}")
        if not status_desc.writable or status_desc.length < 1:
            raise DeviceFault(f"queue {queue}: virtio-blk status descriptor is not a writable "
                              "byte")
        req_type, _reserved, sector = _HEADER.unpack(buffers.read(header.addr, _HEADER.size))
        status, written = self._execute(req_type, sector, data, buffers)
        if status != self._s_ok:
            self.errors += 1
        buffers.write(status_desc.addr, bytes([status]))
        return written + 1

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def _execute(self, req_type: int, sector: int, data: list[Descriptor],
                 buffers: GuestBuffers) -> tuple[int, int]:
        if req_type == self._t_in:
            self._count("in")
            return self._transfer(sector, data, buffers, to_guest=True)
        if req_type == self._t_out:
            self._count("out")
            if self.readonly:
                return self._s_ioerr, 0
            return self._transfer(sector, data, buffers, to_guest=False)
        if req_type == self._t_flush:
            self._count("flush")
            if not self.readonly:
                try:
                    os.fdatasync(self.fd)
                except OSError as exc:
                    log.warning("virtio-blk: flush of %s failed: %s", self.path, exc)
                    return self._s_ioerr, 0
            return self._s_ok, 0
        if req_type == self._t_get_id:
            self._count("get-id")
            return self._get_id(data, buffers)
        self._count("unsupported")
        return self._s_unsupp, 0

    def _transfer(self, sector: int, data: list[Descriptor], buffers: GuestBuffers, *,
                  to_guest: bool) -> tuple[int, int]:
        assert self._model is not None
        m = self._model
        # Every data buffer must point the way the request moves data (VirtIO 1.2 §5.2.6.1:
        # IN buffers device-writable, OUT buffers device-readable).
        if any(d.writable != to_guest for d in data):
            return self._s_ioerr, 0
        total = sum(d.length for d in data)
        if total > 0xFFFF_FFFF or not m.blkRangeOk(sector, total, self.capacity):
            return self._s_ioerr, 0
        offset = int(m.blkByteOffset(sector))
        segs: list[int] = []
        for d in data:
            segs += (d.addr, d.length)
        # One scatter/gather transfer in the shim for the whole chain.
        try:
            if to_guest:
                moved = buffers.read_file_into_chain(self.fd, segs, offset)
            else:
                moved = buffers.write_file_from_chain(self.fd, segs, offset)
        except KvmError as exc:  # host I/O error, not the guest's fault
            log.warning("virtio-blk: I/O on %s failed: %s", self.path, exc)
            return self._s_ioerr, 0
        if moved != total:  # the file shrank underneath us
            return self._s_ioerr, moved if to_guest else 0
        if to_guest:
            self.bytes_read += moved
            return self._s_ok, moved
        self.bytes_written += moved
        return self._s_ok, 0

    def _get_id(self, data: list[Descriptor], buffers: GuestBuffers) -> tuple[int, int]:
        if not data or not all(d.writable for d in data):
            return self._s_ioerr, 0
        written = 0
        for d in data:
            part = self.serial[written:written + d.length]
            if not part:
                break
            buffers.write(d.addr, part)
            written += len(part)
        return self._s_ok, written
