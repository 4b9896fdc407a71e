"""Thin typed wrapper over the C shim: a KVM virtual machine, its vCPU and its guest RAM.

Every shim call returns 0 or ``-errno`` and fills a message buffer; here a failure becomes a
:class:`KvmError` (or :class:`GuestMemoryError` for an access outside guest RAM) carrying that
one-line message. Register and exit structures are the shim's own cffi structs (attribute
access, no copies on the exit path).
"""

from __future__ import annotations

import enum
import errno as errno_mod
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

from mvtool.errors import MvtoolError
from mvtool.kvm_shim import load

_MSG_LEN = 256
#: Reads up to this many bytes (ring entries, descriptors) reuse one buffer.
_SCRATCH_LEN = 64
_DESC_UNPACK = struct.Struct("<QIHH").unpack_from


class KvmError(MvtoolError):
    """A KVM ioctl or shim call failed; ``errno`` holds the positive error number."""

    def __init__(self, message: str, err: int):
        super().__init__(message)
        self.errno = err


class GuestMemoryError(KvmError):
    """A guest-physical range [gpa, gpa+len) is not entirely inside guest RAM."""


class ExitKind(enum.IntEnum):
    """Exit kinds decoded by the shim (``enum mv_exit_kind`` in shim/mvshim.h)."""

    IO = 1
    MMIO = 2
    HLT = 3
    SHUTDOWN = 4
    INTERNAL_ERROR = 5
    FAIL_ENTRY = 6
    SYSTEM_EVENT = 7
    INTR = 8
    OTHER = 9


IO_IN = 0
IO_OUT = 1


@dataclass(frozen=True)
class CpuidEntry:
    """One row of KVM_GET_SUPPORTED_CPUID."""

    function: int
    index: int
    eax: int
    ebx: int
    ecx: int
    edx: int


class _ShimObject:
    def __init__(self) -> None:
        self._mod = load()
        self._ffi = self._mod.ffi
        self._lib = self._mod.lib
        self._msg = self._ffi.new("char[]", _MSG_LEN)

    def _check(self, rc: int, error: type[KvmError] = KvmError) -> None:
        if rc != 0:
            message = self._ffi.string(self._msg).decode(errors="replace") or f"error {rc}"
            raise error(message, -rc)


class GuestMemory(_ShimObject):
    """Guest RAM [0, size): bounds-checked copies in and out, and file <-> RAM bulk copies."""

    def __init__(self, vm: Vm, size: int):
        super().__init__()
        self._vm = vm
        self.size = size
        self._scratch = self._ffi.new("uint8_t[]", _SCRATCH_LEN)
        self._scratch_view = self._ffi.buffer(self._scratch)
        self._done = self._ffi.new("uint64_t *")

    def _mem_check(self, rc: int) -> None:
        if rc == -errno_mod.EFAULT:
            self._check(rc, GuestMemoryError)
        self._check(rc)

    def read(self, gpa: int, length: int) -> bytes:
        """Bytes [gpa, gpa+length) of guest RAM; GuestMemoryError if not all inside RAM."""
        if gpa < 0 or length < 0:
            raise GuestMemoryError(f"negative guest range {gpa:#x}+{length:#x}", errno_mod.EFAULT)
        if 0 < length <= _SCRATCH_LEN:
            # Ring entries and descriptors: no allocation per access.
            rc = self._lib.mv_mem_read(self._vm._ptr, gpa, self._scratch, length, self._msg,
                                       _MSG_LEN)
            if rc:
                self._mem_check(rc)
            return self._scratch_view[:length]
        buf = self._ffi.new("uint8_t[]", length) if length else self._ffi.NULL
        self._mem_check(self._lib.mv_mem_read(self._vm._ptr, gpa, buf, length, self._msg,
                                              _MSG_LEN))
        return bytes(self._ffi.buffer(buf, length)) if length else b""

    def read_desc(self, gpa: int) -> tuple[int, int, int, int]:
        """The split-ring descriptor at gpa, unpacked: ``(addr, len, flags, next)``
        (VirtIO 1.2 §2.7.5); GuestMemoryError if its 16 bytes are not all inside RAM."""
        if gpa < 0:
            raise GuestMemoryError(f"negative guest address {gpa:#x}", errno_mod.EFAULT)
        rc = self._lib.mv_mem_read(self._vm._ptr, gpa, self._scratch, 16, self._msg, _MSG_LEN)
        if rc:
            self._mem_check(rc)
        return _DESC_UNPACK(self._scratch_view)

    def write(self, gpa: int, data: bytes | bytearray | memoryview) -> None:
        """Store ``data`` at gpa; GuestMemoryError (nothing written) if not all inside RAM."""
        if gpa < 0:
            raise GuestMemoryError(f"negative guest address {gpa:#x}", errno_mod.EFAULT)
        raw = data if type(data) is bytes else bytes(data)
        rc = self._lib.mv_mem_write(self._vm._ptr, gpa, raw, len(raw), self._msg, _MSG_LEN)
        if rc:
            self._mem_check(rc)

    def read_u8(self, gpa: int) -> int:
        """Little-endian unsigned 8-bit load."""
        return self.read(gpa, 1)[0]

    def read_u16(self, gpa: int) -> int:
        """Little-endian unsigned 16-bit load."""
        return int.from_bytes(self.read(gpa, 2), "little")

    def read_u32(self, gpa: int) -> int:
        """Little-endian unsigned 32-bit load."""
        return int.from_bytes(self.read(gpa, 4), "little")

    def read_u64(self, gpa: int) -> int:
        """Little-endian unsigned 64-bit load."""
        return int.from_bytes(self.read(gpa, 8), "little")

    def write_u8(self, gpa: int, value: int) -> None:
        """Little-endian 8-bit store."""
        self.write(gpa, (value & 0xFF).to_bytes(1, "little"))

    def write_u16(self, gpa: int, value: int) -> None:
        """Little-endian 16-bit store."""
        self.write(gpa, (value & 0xFFFF).to_bytes(2, "little"))

    def write_u32(self, gpa: int, value: int) -> None:
        """Little-endian 32-bit store."""
        self.write(gpa, (value & 0xFFFF_FFFF).to_bytes(4, "little"))

    def write_u64(self, gpa: int, value: int) -> None:
        """Little-endian 64-bit store."""
        self.write(gpa, (value & (2**64 - 1)).to_bytes(8, "little"))

    def pread_from(self, fd: int, gpa: int, length: int, file_offset: int) -> int:
        """Read ``length`` bytes of file ``fd`` at ``file_offset`` straight into guest RAM at
        ``gpa`` (no Python copy). Returns the bytes read (short only at end of file)."""
        if gpa < 0 or length < 0:
            raise GuestMemoryError(f"negative guest range {gpa:#x}+{length:#x}", errno_mod.EFAULT)
        done = self._ffi.new("uint64_t *")
        self._mem_check(self._lib.mv_mem_pread(self._vm._ptr, fd, gpa, length, file_offset, done,
                                               self._msg, _MSG_LEN))
        return int(done[0])

    def pwrite_to(self, fd: int, gpa: int, length: int, file_offset: int) -> int:
        """Write guest RAM [gpa, gpa+length) to file ``fd`` at ``file_offset`` (no Python
        copy). Returns the bytes written."""
        if gpa < 0 or length < 0:
            raise GuestMemoryError(f"negative guest range {gpa:#x}+{length:#x}", errno_mod.EFAULT)
        done = self._ffi.new("uint64_t *")
        self._mem_check(self._lib.mv_mem_pwrite(self._vm._ptr, fd, gpa, length, file_offset,
                                                done, self._msg, _MSG_LEN))
        return int(done[0])

    def preadv_from(self, fd: int, segs: Sequence[int], file_offset: int) -> int:
        """Scatter: read consecutive bytes of file ``fd`` from ``file_offset`` into the guest
        ranges ``segs`` (flat ``gpa0, len0, gpa1, len1, ...``), in one shim call and without a
        Python copy. Every range is checked before anything moves (GuestMemoryError). Returns
        the bytes read (short only at end of file)."""
        return self._xferv(self._lib.mv_mem_preadv, fd, segs, file_offset)

    def pwritev_to(self, fd: int, segs: Sequence[int], file_offset: int) -> int:
        """Gather: write the guest ranges ``segs`` (flat, as for :meth:`preadv_from`) back to
        back to file ``fd`` from ``file_offset``. Returns the bytes written."""
        return self._xferv(self._lib.mv_mem_pwritev, fd, segs, file_offset)

    def _xferv(self, fn: Any, fd: int, segs: Sequence[int], file_offset: int) -> int:
        if len(segs) % 2:
            raise ValueError("segments must be (gpa, len) pairs")
        try:
            arr = self._ffi.new("uint64_t[]", segs)
        except OverflowError:
            raise GuestMemoryError("negative or too large guest range in a scatter/gather list",
                                   errno_mod.EFAULT) from None
        rc = fn(self._vm._ptr, fd, arr, len(segs) // 2, file_offset, self._done, self._msg,
                _MSG_LEN)
        if rc:
            self._mem_check(rc)
        return int(self._done[0])

    def contains(self, gpa: int, length: int) -> bool:
        """Whether [gpa, gpa+length) lies inside guest RAM (the shim's own check)."""
        if gpa < 0 or length < 0 or gpa >= 2**64 or length >= 2**64:
            return False
        return self._lib.mv_range_check(self.size, gpa, length) == 0


class Vm(_ShimObject):
    """A KVM virtual machine opened through ``kvm_path`` (KVM API version 12 required)."""

    def __init__(self, kvm_path: str = "/dev/kvm"):
        super().__init__()
        out = self._ffi.new("mv_vm **")
        self._check(self._lib.mv_vm_create(kvm_path.encode(), out, self._msg, _MSG_LEN))
        self._ptr: Any = out[0]
        self.kvm_path = kvm_path
        self.memory: GuestMemory | None = None
        self._vcpus: list[Vcpu] = []

    def set_memory(self, size: int) -> GuestMemory:
        """Back guest-physical [0, size) with anonymous host memory (KVM slot 0)."""
        self._check(self._lib.mv_vm_set_memory(self._ptr, size, self._msg, _MSG_LEN))
        self.memory = GuestMemory(self, size)
        return self.memory

    def set_tss_addr(self, addr: int) -> None:
        """KVM_SET_TSS_ADDR (three pages the guest must not use)."""
        self._check(self._lib.mv_vm_set_tss_addr(self._ptr, addr, self._msg, _MSG_LEN))

    def set_identity_map_addr(self, addr: int) -> None:
        """KVM_SET_IDENTITY_MAP_ADDR (one page the guest must not use)."""
        self._check(self._lib.mv_vm_set_identity_map_addr(self._ptr, addr, self._msg, _MSG_LEN))

    def create_irqchip(self) -> None:
        """In-kernel PIC, IOAPIC and local APICs (KVM_CREATE_IRQCHIP)."""
        self._check(self._lib.mv_vm_create_irqchip(self._ptr, self._msg, _MSG_LEN))

    def create_pit2(self) -> None:
        """In-kernel i8254 PIT (KVM_CREATE_PIT2)."""
        self._check(self._lib.mv_vm_create_pit2(self._ptr, self._msg, _MSG_LEN))

    def irq_line(self, gsi: int, level: bool) -> None:
        """Raise (True) or lower (False) an interrupt line; callable from any thread."""
        self._check(self._lib.mv_vm_irq_line(self._ptr, gsi, 1 if level else 0, self._msg,
                                             _MSG_LEN))

    def supported_cpuid(self) -> list[CpuidEntry]:
        """The host's KVM_GET_SUPPORTED_CPUID table."""
        cap = 4096
        rows = self._ffi.new("uint32_t[]", 6 * cap)
        count = self._ffi.new("uint32_t *")
        self._check(self._lib.mv_vm_supported_cpuid(self._ptr, rows, cap, count, self._msg,
                                                    _MSG_LEN))
        return [CpuidEntry(*(int(rows[6 * i + k]) for k in range(6))) for i in range(count[0])]

    def create_vcpu(self, vcpu_id: int = 0) -> Vcpu:
        """A vCPU with the host's supported CPUID installed."""
        vcpu = Vcpu(self, vcpu_id)
        self._vcpus.append(vcpu)
        return vcpu

    def close(self) -> None:
        """Release the vCPUs, guest RAM and file descriptors (idempotent)."""
        for vcpu in self._vcpus:
            vcpu.close()
        self._vcpus.clear()
        if self._ptr is not None:
            self._lib.mv_vm_destroy(self._ptr)
            self._ptr = None
            self.memory = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Vcpu(_ShimObject):
    """One virtual CPU: registers, KVM_RUN and completion of IO-in / MMIO-read exits."""

    def __init__(self, vm: Vm, vcpu_id: int):
        super().__init__()
        out = self._ffi.new("mv_vcpu **")
        self._check(self._lib.mv_vcpu_create(vm._ptr, vcpu_id, out, self._msg, _MSG_LEN))
        self._ptr: Any = out[0]
        self.vcpu_id = vcpu_id
        self._exit = self._ffi.new("struct mv_exit *")

    def get_regs(self) -> Any:
        """General registers as a ``struct mv_regs`` (fields rax..r15, rip, rflags)."""
        regs = self._ffi.new("struct mv_regs *")
        self._check(self._lib.mv_vcpu_get_regs(self._ptr, regs, self._msg, _MSG_LEN))
        return regs

    def set_regs(self, regs: Any) -> None:
        """Load general registers from a ``struct mv_regs``."""
        self._check(self._lib.mv_vcpu_set_regs(self._ptr, regs, self._msg, _MSG_LEN))

    def get_sregs(self) -> Any:
        """Special registers as a ``struct mv_sregs`` (segments, GDT/IDT, CRs, EFER)."""
        sregs = self._ffi.new("struct mv_sregs *")
        self._check(self._lib.mv_vcpu_get_sregs(self._ptr, sregs, self._msg, _MSG_LEN))
        return sregs

    def set_sregs(self, sregs: Any) -> None:
        """Load special registers from a ``struct mv_sregs``."""
        self._check(self._lib.mv_vcpu_set_sregs(self._ptr, sregs, self._msg, _MSG_LEN))

    def set_msr(self, index: int, value: int) -> None:
        """Write one model-specific register."""
        self._check(self._lib.mv_vcpu_set_msr(self._ptr, index, value, self._msg, _MSG_LEN))

    def init_fpu(self) -> None:
        """FPU/SSE state as after FNINIT (FCW 0x37f, MXCSR 0x1f80)."""
        self._check(self._lib.mv_vcpu_init_fpu(self._ptr, self._msg, _MSG_LEN))

    def init_lapic(self) -> None:
        """Wire LINT0 as ExtINT and LINT1 as NMI, as on a PC (needs the in-kernel irqchip)."""
        self._check(self._lib.mv_vcpu_init_lapic(self._ptr, self._msg, _MSG_LEN))

    def run(self) -> Any:
        """KVM_RUN until the next exit; returns the decoded ``struct mv_exit`` (reused: valid
        until the next call)."""
        self._check(self._lib.mv_vcpu_run(self._ptr, self._exit, self._msg, _MSG_LEN))
        return self._exit

    def io_data(self, exit_: Any) -> bytes:
        """The ``io_size * io_count`` data bytes of an IO exit."""
        return bytes(self._ffi.buffer(exit_.io_data, exit_.io_size * exit_.io_count))

    def complete_io_in(self, data: bytes) -> None:
        """Supply the bytes an IO-in exit reads (exactly io_size * io_count)."""
        self._check(self._lib.mv_vcpu_complete_io_in(self._ptr, data, len(data), self._msg,
                                                     _MSG_LEN))

    def complete_mmio_read(self, value: int, length: int) -> None:
        """Supply the little-endian value an MMIO-read exit of ``length`` bytes loads."""
        data = (value & ((1 << (8 * length)) - 1)).to_bytes(length, "little")
        self._check(self._lib.mv_vcpu_complete_mmio_read(self._ptr, data, length, self._msg,
                                                         _MSG_LEN))

    def request_exit(self, on: bool = True) -> None:
        """Make the current or next KVM_RUN return an INTR exit (async-signal-safe)."""
        self._lib.mv_vcpu_request_exit(self._ptr, 1 if on else 0)

    def close(self) -> None:
        """Release the vCPU (idempotent)."""
        if self._ptr is not None:
            self._lib.mv_vcpu_destroy(self._ptr)
            self._ptr = None
