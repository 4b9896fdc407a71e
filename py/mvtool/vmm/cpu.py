"""Boot CPU state: GDT, identity page tables, control registers, 64-bit (or 32-bit) entry.

The 64-bit layout follows the Linux x86 64-bit boot protocol (Documentation/arch/x86/boot.rst,
"64-bit Boot Protocol"): paging on with an identity map covering the loaded kernel, zero page,
command line and initrd; a GDT with __BOOT_CS = 0x10 (64-bit code) and __BOOT_DS = 0x18 (flat
data); interrupts off; RSI = address of struct boot_params.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mvtool.vmm import platform
from mvtool.vmm.kvm import CpuidEntry, GuestMemory, Vcpu

BOOT_CS = 0x10
BOOT_DS = 0x18
BOOT_TSS = 0x20

CR0_PE = 1 << 0
CR0_ET = 1 << 4
CR0_NE = 1 << 5
CR0_PG = 1 << 31
CR4_PAE = 1 << 5
EFER_LME = 1 << 8
EFER_LMA = 1 << 10

PTE_PRESENT = 1 << 0
PTE_WRITE = 1 << 1
PTE_LARGE = 1 << 7

#: The identity map covers [0, IDENTITY_MAP_LIMIT) with 2 MiB pages.
IDENTITY_MAP_LIMIT = 4 * platform.GIB
PAGE_SIZE_2M = 2 * platform.MIB


def gdt_entry(flags: int, base: int, limit: int) -> int:
    """Pack a segment descriptor (Intel SDM vol. 3, 3.4.5); ``flags`` is the 12-bit field
    G/DB/L/AVL (bits 15..12) and P/DPL/S/type (bits 7..0)."""
    return (
        ((base & 0xFF00_0000) << 32)
        | ((flags & 0xF0FF) << 40)
        | ((limit & 0xF_0000) << 32)
        | ((base & 0x00FF_FFFF) << 16)
        | (limit & 0xFFFF)
    )


#: null, null, 64-bit code (0x10), flat data (0x18), 32-bit TSS (0x20)
GDT_64 = (
    0,
    0,
    gdt_entry(0xA09B, 0, 0xFFFFF),
    gdt_entry(0xC093, 0, 0xFFFFF),
    gdt_entry(0x808B, 0, 0xFFFFF),
)
#: the same with a 32-bit code segment at 0x10 (protected-mode entry)
GDT_32 = (
    0,
    0,
    gdt_entry(0xC09B, 0, 0xFFFFF),
    gdt_entry(0xC093, 0, 0xFFFFF),
    gdt_entry(0x808B, 0, 0xFFFFF),
)


@dataclass(frozen=True)
class PageTableLayout:
    """Where the identity page tables live: one PML4, one PDPT and one PD per GiB."""

    pml4: int
    pdpt: int
    pds: tuple[int, ...]

    @property
    def end(self) -> int:
        """First byte after the last table."""
        return self.pds[-1] + 0x1000


def page_table_layout(base: int = platform.PML4_ADDR,
                      limit: int = IDENTITY_MAP_LIMIT) -> PageTableLayout:
    """Table addresses for an identity map of [0, limit) (limit a multiple of 1 GiB, ≤ 512 GiB)."""
    if limit <= 0 or limit % platform.GIB or limit > 512 * platform.GIB:
        raise ValueError(f"identity map limit {limit:#x} is not a multiple of 1 GiB ≤ 512 GiB")
    gibs = limit // platform.GIB
    return PageTableLayout(base, base + 0x1000,
                           tuple(base + 0x2000 + 0x1000 * i for i in range(gibs)))


def page_table_bytes(layout: PageTableLayout) -> bytes:
    """The contents of [layout.pml4, layout.end): PML4[0] → PDPT, PDPT[i] → PD i, and each PD
    maps 1 GiB with 2 MiB pages (present, writable, identity)."""
    out = bytearray(layout.end - layout.pml4)
    flags = PTE_PRESENT | PTE_WRITE
    struct.pack_into("<Q", out, 0, layout.pdpt | flags)
    for i, pd in enumerate(layout.pds):
        struct.pack_into("<Q", out, layout.pdpt - layout.pml4 + 8 * i, pd | flags)
        off = pd - layout.pml4
        gib = i * platform.GIB
        struct.pack_into("<512Q", out, off,
                         *((gib + j * PAGE_SIZE_2M) | flags | PTE_LARGE for j in range(512)))
    return bytes(out)


def write_boot_tables(mem: GuestMemory, long_mode: bool = True) -> PageTableLayout:
    """Write the GDT, an empty IDT and (for long mode) the identity page tables."""
    gdt = GDT_64 if long_mode else GDT_32
    mem.write(platform.GDT_ADDR, struct.pack(f"<{len(gdt)}Q", *gdt))
    mem.write(platform.IDT_ADDR, bytes(8))
    layout = page_table_layout()
    if long_mode:
        mem.write(layout.pml4, page_table_bytes(layout))
    return layout


def _segment(seg: object, selector: int, code: bool, long_mode: bool) -> None:
    seg.base = 0
    seg.limit = 0xFFFFFFFF
    seg.selector = selector
    seg.type = 0xB if code else 0x3
    seg.present = 1
    seg.dpl = 0
    seg.s = 1
    seg.l = 1 if (code and long_mode) else 0
    seg.db = 0 if (code and long_mode) else 1
    seg.g = 1
    seg.avl = 0
    seg.unusable = 0


def setup_entry(vcpu: Vcpu, mem: GuestMemory, entry: int, *, rsi: int = 0,
                stack: int = platform.BOOT_STACK_TOP, long_mode: bool = True) -> None:
    """Put the vCPU at ``entry`` in 64-bit long mode (identity paging) or 32-bit flat
    protected mode (paging off), interrupts disabled, with RSI/ESI = ``rsi``."""
    layout = write_boot_tables(mem, long_mode)
    sregs = vcpu.get_sregs()
    for name in ("ds", "es", "fs", "gs", "ss"):
        _segment(getattr(sregs, name), BOOT_DS, code=False, long_mode=long_mode)
    _segment(sregs.cs, BOOT_CS, code=True, long_mode=long_mode)
    tr = sregs.tr
    tr.base, tr.limit, tr.selector, tr.type = 0, 0xFFFFF, BOOT_TSS, 0xB
    tr.present, tr.dpl, tr.s, tr.l, tr.db, tr.g, tr.avl, tr.unusable = 1, 0, 0, 0, 0, 1, 0, 0
    sregs.gdt.base = platform.GDT_ADDR
    sregs.gdt.limit = 8 * len(GDT_64) - 1
    sregs.idt.base = platform.IDT_ADDR
    sregs.idt.limit = 7
    if long_mode:
        sregs.cr3 = layout.pml4
        sregs.cr4 = CR4_PAE
        sregs.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG
        sregs.efer = EFER_LME | EFER_LMA
    else:
        sregs.cr3 = 0
        sregs.cr4 = 0
        sregs.cr0 = CR0_PE | CR0_ET | CR0_NE
        sregs.efer = 0
    vcpu.set_sregs(sregs)
    regs = vcpu.get_regs()
    for name in ("rax", "rbx", "rcx", "rdx", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12",
                 "r13", "r14", "r15"):
        setattr(regs, name, 0)
    regs.rip = entry
    regs.rsi = rsi
    regs.rsp = stack
    regs.rflags = 0x2  # bit 1 is reserved-one; IF clear
    vcpu.set_regs(regs)


def cpuid_lookup(table: list[CpuidEntry], function: int, index: int = 0) -> CpuidEntry | None:
    """The supported-CPUID row for (function, index), if the host reports one."""
    for entry in table:
        if entry.function == function and entry.index == index:
            return entry
    for entry in table:
        if entry.function == function:
            return entry
    return None
