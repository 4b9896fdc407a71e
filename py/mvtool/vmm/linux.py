"""Put a Linux guest into a :class:`~mvtool.vmm.engine.Machine`: virtio-blk disks on the MMIO
bus, ACPI tables describing them, kernel, initrd, command line, zero page and 64-bit entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from mvtool.errors import MvtoolError
from mvtool.vmm import acpi, bootloader, cpu, platform
from mvtool.vmm.engine import Machine


@dataclass(frozen=True)
class Disk:
    """A virtio-blk disk backed by a host file."""

    path: Path
    readonly: bool = False


@dataclass
class LinuxSetup:
    """What was loaded where."""

    kernel: bootloader.KernelImage
    initrd: bootloader.Initrd | None
    cmdline: str
    disks: list[Disk] = field(default_factory=list)
    virtio_slots: list[acpi.VirtioMmioSlot] = field(default_factory=list)
    virtio_missing: str | None = None   #: why no virtio devices could be attached


def check_disk(disk: Disk) -> None:
    """One-line error unless the disk's backing file is a readable (and, unless read-only,
    writable) regular file."""
    p = disk.path
    if not p.exists():
        raise MvtoolError(f"disk {p}: no such file")
    if not p.is_file():
        raise MvtoolError(f"disk {p}: not a regular file")
    mode = "rb" if disk.readonly else "r+b"
    try:
        with open(p, mode):
            pass
    except OSError as exc:
        raise MvtoolError(f"disk {p}: cannot open {'read-only' if disk.readonly else 'read-write'}"
                          f" ({exc.strerror})") from None


def attach_disks(machine: Machine, disks: list[Disk], log: Callable[[str], None],
                 model: ModuleType | None = None
                 ) -> tuple[list[acpi.VirtioMmioSlot], str | None]:
    """Attach one virtio-blk device per disk at the platform's virtio-mmio windows.

    ``model`` is the extracted transport model the devices run (default: the verified one).
    The device model is imported lazily; if it is not available the guest boots without disks
    and the reason is returned (and logged)."""
    if not disks:
        return [], None
    try:
        from mvtool.vmm.virtio_blk import VirtioBlkBackend
        from mvtool.vmm.virtio_mmio import VirtioMmioDevice
    except ImportError as exc:
        why = f"virtio-blk device model not available ({exc}); booting without disks"
        log(why)
        return [], why
    slots = []
    for i, disk in enumerate(disks):
        slot = acpi.virtio_slot(i)
        backend = VirtioBlkBackend(str(disk.path), disk.readonly)
        device = VirtioMmioDevice(machine.memory, machine.irq_line(slot.gsi), backend,
                                  model=model)
        machine.attach_mmio(slot.base, slot.size, device, f"virtio-blk{i}")
        slots.append(slot)
    return slots, None


def write_acpi(machine: Machine, slots: list[acpi.VirtioMmioSlot]) -> acpi.AcpiTables:
    """Build the ACPI tables and store them in guest RAM."""
    tables = acpi.build_tables(slots)
    if tables.total_end() > platform.HIGH_MEMORY:
        raise MvtoolError("ACPI tables do not fit below 1 MiB")
    for addr, blob in tables.blobs.items():
        machine.memory.write(addr, blob)
    return tables


def setup_linux(machine: Machine, kernel: Path, initrd: Path | None, cmdline: str,
                disks: list[Disk], log: Callable[[str], None],
                model: ModuleType | None = None) -> LinuxSetup:
    """Load everything and point the vCPU at the kernel's 64-bit entry. ``model``: the
    virtio devices' transport model (default: the verified extraction)."""
    mem = machine.memory
    image = bootloader.load_kernel(mem, kernel)
    rd = bootloader.load_initrd(mem, initrd, image) if initrd is not None else None
    cmdline_len = bootloader.write_cmdline(mem, cmdline, image)
    slots, missing = attach_disks(machine, disks, log, model)
    tables = write_acpi(machine, slots)
    zero_page = bootloader.build_zero_page(image, mem.size, platform.CMDLINE_ADDR, cmdline_len,
                                           rd, tables.rsdp_addr)
    mem.write(platform.ZERO_PAGE_ADDR, zero_page)
    cpu.setup_entry(machine.vcpu, mem, image.entry, rsi=platform.ZERO_PAGE_ADDR,
                    stack=platform.BOOT_STACK_TOP)
    return LinuxSetup(image, rd, cmdline, disks, slots, missing)
