"""ACPI tables for the guest: RSDP, XSDT, FADT, FACS, MADT and a DSDT in hand-assembled AML.

Why ACPI: Debian's kernel is built without VIRTIO_MMIO_CMDLINE_DEVICES, so its virtio_mmio
driver finds devices only through firmware tables; each virtio-mmio window is a DSDT device
with ``_HID "LNRO0005"`` and its memory range and interrupt in ``_CRS`` (the binding Linux's
drivers/virtio/virtio_mmio.c matches). The FADT's PM1a blocks and the DSDT's ``\\_S5`` package
give ``poweroff`` a way out; RESET_REG gives ``reboot`` one.

Layouts follow the ACPI 6.5 specification (sections cited per table). Everything is built in
Python; no ASL compiler runs at boot time.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from mvtool.vmm import platform

OEM_ID = b"MVMM  "
OEM_TABLE_ID = b"MICROVMM"
OEM_REVISION = 1
CREATOR_ID = b"MVMM"
CREATOR_REVISION = 1

LAPIC_ADDR = 0xFEE0_0000
IOAPIC_ADDR = 0xFEC0_0000
IOAPIC_ID = 0
SCI_IRQ = 9


def checksum(data: bytes) -> int:
    """The byte that makes ``data`` (with it included) sum to 0 mod 256."""
    return (-sum(data)) & 0xFF


def sdt(signature: bytes, revision: int, body: bytes) -> bytes:
    """A system description table: 36-byte header (ACPI 6.5, 5.2.6) followed by ``body``."""
    length = 36 + len(body)
    header = struct.pack("<4sIBB6s8sI4sI", signature, length, revision, 0, OEM_ID, OEM_TABLE_ID,
                         OEM_REVISION, CREATOR_ID, CREATOR_REVISION)
    table = bytearray(header + body)
    table[9] = checksum(bytes(table))
    return bytes(table)


def rsdp(xsdt_addr: int) -> bytes:
    """Root System Description Pointer, revision 2 (ACPI 6.5, 5.2.5.3)."""
    first = bytearray(struct.pack("<8sB6sBI", b"RSD PTR ", 0, OEM_ID, 2, 0))
    first[8] = checksum(bytes(first))
    full = bytearray(bytes(first) + struct.pack("<IQB3s", 36, xsdt_addr, 0, b"\0\0\0"))
    full[32] = checksum(bytes(full))
    return bytes(full)


def xsdt(entries: list[int]) -> bytes:
    """Extended System Description Table (ACPI 6.5, 5.2.8): 64-bit table pointers."""
    return sdt(b"XSDT", 1, b"".join(struct.pack("<Q", a) for a in entries))


def gas_io(port: int, width_bits: int) -> bytes:
    """Generic Address Structure (ACPI 6.5, 5.2.3.2) for an I/O port of the given width."""
    access = {8: 1, 16: 2, 32: 3, 64: 4}[width_bits]
    return struct.pack("<BBBBQ", 1, width_bits, 0, access, port)


GAS_NONE = bytes(12)

# FADT Flags (ACPI 6.5, Table 5.10)
FADT_WBINVD = 1 << 0
FADT_PWR_BUTTON = 1 << 4   # power button is a control-method device (none here)
FADT_SLP_BUTTON = 1 << 5
FADT_RESET_REG_SUP = 1 << 10
# IA-PC boot architecture flags (ACPI 6.5, Table 5.11)
IAPC_VGA_NOT_PRESENT = 1 << 2
IAPC_CMOS_RTC_NOT_PRESENT = 1 << 5

FADT_LENGTH = 276


def fadt(dsdt_addr: int, facs_addr: int) -> bytes:
    """Fixed ACPI Description Table, revision 6 (ACPI 6.5, 5.2.9, Table 5.9).

    Full (not hardware-reduced) ACPI with PM1a event/control blocks at platform ports, SMI_CMD
    0 (always in ACPI mode), no PM timer, no GPE block, and RESET_REG in I/O space. The boot
    architecture flags say there is no i8042 keyboard controller, VGA or CMOS RTC."""
    b = bytearray(FADT_LENGTH - 36)

    def put(offset: int, fmt: str, *values: int) -> None:
        struct.pack_into(fmt, b, offset - 36, *values)

    put(36, "<I", facs_addr)
    put(40, "<I", dsdt_addr)
    put(45, "<B", 0)                       # preferred PM profile: unspecified
    put(46, "<H", SCI_IRQ)
    put(48, "<I", 0)                       # SMI_CMD: no SMM, ACPI mode is fixed
    put(56, "<I", platform.ACPI_PM1A_EVT_PORT)
    put(64, "<I", platform.ACPI_PM1A_CNT_PORT)
    put(88, "<BB", 4, 2)                   # PM1_EVT_LEN, PM1_CNT_LEN
    put(96, "<HH", 0x65, 0x3E9)            # C2/C3 latencies above limits: no C2/C3
    put(109, "<H", IAPC_VGA_NOT_PRESENT | IAPC_CMOS_RTC_NOT_PRESENT)
    put(112, "<I", FADT_WBINVD | FADT_PWR_BUTTON | FADT_SLP_BUTTON | FADT_RESET_REG_SUP)
    b[116 - 36:128 - 36] = gas_io(platform.ACPI_RESET_PORT, 8)
    put(128, "<B", platform.ACPI_RESET_VALUE)
    put(131, "<B", 5)                      # FADT minor version (6.5)
    put(132, "<Q", facs_addr)
    put(140, "<Q", dsdt_addr)
    b[148 - 36:160 - 36] = gas_io(platform.ACPI_PM1A_EVT_PORT, 32)
    b[172 - 36:184 - 36] = gas_io(platform.ACPI_PM1A_CNT_PORT, 16)
    return sdt(b"FACP", 6, bytes(b))


def facs() -> bytes:
    """Firmware ACPI Control Structure (ACPI 6.5, 5.2.10): 64 bytes, no checksum."""
    return struct.pack("<4sIIIIIQB3sI24s", b"FACS", 64, 0, 0, 0, 0, 0, 2, b"\0\0\0", 0, bytes(24))


# MADT interrupt-source-override flags (ACPI 6.5, Table 5.26)
MPS_ACTIVE_HIGH = 0b01
MPS_LEVEL = 0b11 << 2


def madt(num_cpus: int = 1) -> bytes:
    """Multiple APIC Description Table (ACPI 6.5, 5.2.12): local APICs, one I/O APIC at GSI 0,
    and the SCI override (IRQ 9, level, active high). ISA IRQs 0-15 otherwise map 1:1 to
    GSIs, which is KVM's default in-kernel irqchip routing."""
    body = bytearray(struct.pack("<II", LAPIC_ADDR, 1))  # PCAT_COMPAT: dual 8259 present
    for cpu in range(num_cpus):
        body += struct.pack("<BBBBI", 0, 8, cpu, cpu, 1)
    body += struct.pack("<BBBBII", 1, 12, IOAPIC_ID, 0, IOAPIC_ADDR, 0)
    body += struct.pack("<BBBBIH", 2, 10, 0, SCI_IRQ, SCI_IRQ, MPS_ACTIVE_HIGH | MPS_LEVEL)
    return sdt(b"APIC", 5, bytes(body))


# --- AML (ACPI 6.5, chapter 20) --------------------------------------------------------------

AML_ZERO = 0x00
AML_ONE = 0x01
AML_NAME = 0x08
AML_BYTE = 0x0A
AML_WORD = 0x0B
AML_DWORD = 0x0C
AML_STRING = 0x0D
AML_QWORD = 0x0E
AML_SCOPE = 0x10
AML_BUFFER = 0x11
AML_PACKAGE = 0x12
AML_EXT = 0x5B
AML_DEVICE = 0x82
AML_ROOT = 0x5C


def pkg_length(body_len: int) -> bytes:
    """PkgLength encoding (20.2.4): the length counts the encoding bytes themselves."""
    if body_len + 1 < 0x40:
        return bytes([body_len + 1])
    for extra in (1, 2, 3):
        total = body_len + 1 + extra
        if total < 1 << (4 + 8 * extra):
            out = [(extra << 6) | (total & 0x0F)]
            out += [(total >> (4 + 8 * i)) & 0xFF for i in range(extra)]
            return bytes(out)
    raise ValueError(f"AML package too long: {body_len} bytes")


def name_seg(name: str) -> bytes:
    """A 4-character NameSeg, '_'-padded; leading '\\' makes it a root path."""
    root = name.startswith("\\")
    seg = name.lstrip("\\")
    if not (1 <= len(seg) <= 4) or not (seg[0].isupper() or seg[0] == "_"):
        raise ValueError(f"bad AML name {name!r}")
    if not all(c.isupper() or c.isdigit() or c == "_" for c in seg):
        raise ValueError(f"bad AML name {name!r}")
    return (b"\\" if root else b"") + seg.ljust(4, "_").encode()


def integer(value: int) -> bytes:
    """The shortest AML integer encoding of ``value``."""
    if value == 0:
        return bytes([AML_ZERO])
    if value == 1:
        return bytes([AML_ONE])
    for op, fmt, limit in ((AML_BYTE, "<B", 1 << 8), (AML_WORD, "<H", 1 << 16),
                           (AML_DWORD, "<I", 1 << 32), (AML_QWORD, "<Q", 1 << 64)):
        if 0 <= value < limit:
            return bytes([op]) + struct.pack(fmt, value)
    raise ValueError(f"AML integer out of range: {value}")


def string(text: str) -> bytes:
    """An AML string constant (ASCII)."""
    return bytes([AML_STRING]) + text.encode("ascii") + b"\0"


def name(label: str, value: bytes) -> bytes:
    """``Name(label, value)``."""
    return bytes([AML_NAME]) + name_seg(label) + value


def scope(label: str, *terms: bytes) -> bytes:
    """``Scope(label) { terms }``."""
    body = name_seg(label) + b"".join(terms)
    return bytes([AML_SCOPE]) + pkg_length(len(body)) + body


def device(label: str, *terms: bytes) -> bytes:
    """``Device(label) { terms }``."""
    body = name_seg(label) + b"".join(terms)
    return bytes([AML_EXT, AML_DEVICE]) + pkg_length(len(body)) + body


def buffer(data: bytes) -> bytes:
    """``Buffer() { data }``."""
    body = integer(len(data)) + data
    return bytes([AML_BUFFER]) + pkg_length(len(body)) + body


def package(*elements: bytes) -> bytes:
    """``Package() { elements }`` (each element already encoded)."""
    body = bytes([len(elements)]) + b"".join(elements)
    return bytes([AML_PACKAGE]) + pkg_length(len(body)) + body


def eisa_id(text: str) -> bytes:
    """``EisaId("PNPxxxx")``: three letters and four hex digits compressed into a DWORD."""
    if len(text) != 7:
        raise ValueError(f"bad EISA id {text!r}")
    c = [ord(ch) - 0x40 for ch in text[:3]]
    product = int(text[3:], 16)
    value = (c[0] << 26) | (c[1] << 21) | (c[2] << 16) | product
    swapped = ((value >> 24) & 0xFF) | ((value >> 8) & 0xFF00) | ((value << 8) & 0xFF0000) \
        | ((value << 24) & 0xFF000000)
    return bytes([AML_DWORD]) + struct.pack("<I", swapped)


# --- resource descriptors (ACPI 6.5, 6.4) ---------------------------------------------------

def res_memory32_fixed(base: int, size: int, writable: bool = True) -> bytes:
    """Memory32Fixed (6.4.3.4): large item 0x86."""
    return struct.pack("<BHBII", 0x86, 9, 1 if writable else 0, base, size)


def res_interrupt(gsi: int, *, edge: bool, active_low: bool = False,
                  shared: bool = False) -> bytes:
    """Extended Interrupt (6.4.3.6): large item 0x89, one interrupt, resource consumer."""
    flags = 0x01 | (0x02 if edge else 0) | (0x04 if active_low else 0) | (0x08 if shared else 0)
    return struct.pack("<BHBBI", 0x89, 6, flags, 1, gsi)


def res_io(base: int, length: int) -> bytes:
    """I/O Port (6.4.2.5): small item 0x47, 16-bit decode, fixed base."""
    return struct.pack("<BBHHBB", 0x47, 1, base, base, 1, length)


def res_irq_noflags(irq: int) -> bytes:
    """IRQNoFlags (6.4.2.1): small item 0x22 with a 16-bit IRQ mask (edge, active high)."""
    return struct.pack("<BH", 0x22, 1 << irq)


def resource_template(*items: bytes) -> bytes:
    """``ResourceTemplate() { items }`` with its End Tag (6.4.2.9)."""
    return buffer(b"".join(items) + b"\x79\x00")


@dataclass(frozen=True)
class VirtioMmioSlot:
    """One virtio-mmio window described to the guest."""

    base: int
    size: int
    gsi: int


def virtio_slot(index: int) -> VirtioMmioSlot:
    """The platform's virtio-mmio window and GSI for device ``index``."""
    return VirtioMmioSlot(platform.VIRTIO_MMIO_BASE + index * platform.VIRTIO_MMIO_SIZE,
                          platform.VIRTIO_MMIO_SIZE, platform.VIRTIO_IRQ_BASE + index)


def dsdt(virtio: list[VirtioMmioSlot]) -> bytes:
    """Differentiated System Description Table: COM1, the virtio-mmio devices (``LNRO0005``,
    edge-triggered interrupts: the engine pulses the line) and ``\\_S5``."""
    devices = [
        device("COM1",
               name("_HID", eisa_id("PNP0501")),
               name("_UID", integer(1)),
               name("_CRS", resource_template(res_io(platform.SERIAL_PORT_BASE, 8),
                                              res_irq_noflags(platform.SERIAL_IRQ)))),
    ]
    for i, slot in enumerate(virtio):
        devices.append(device(
            f"V{i:03X}",
            name("_HID", string("LNRO0005")),
            name("_UID", integer(i)),
            name("_CCA", integer(1)),  # cache-coherent DMA (virtio rings live in guest RAM)
            name("_CRS", resource_template(res_memory32_fixed(slot.base, slot.size),
                                           res_interrupt(slot.gsi, edge=True))),
        ))
    s5 = name("\\_S5", package(integer(platform.ACPI_S5_SLP_TYP),
                               integer(platform.ACPI_S5_SLP_TYP), integer(0), integer(0)))
    return sdt(b"DSDT", 2, scope("\\_SB", *devices) + s5)


@dataclass
class AcpiTables:
    """The tables and where each one is placed in guest memory."""

    rsdp_addr: int
    blobs: dict[int, bytes] = field(default_factory=dict)
    names: dict[str, int] = field(default_factory=dict)

    def total_end(self) -> int:
        """First byte after the last table."""
        return max(a + len(b) for a, b in self.blobs.items())


def build_tables(virtio: list[VirtioMmioSlot], num_cpus: int = 1,
                 rsdp_addr: int = platform.ACPI_RSDP_ADDR,
                 tables_addr: int = platform.ACPI_TABLES_ADDR) -> AcpiTables:
    """Lay out RSDP at ``rsdp_addr`` and the other tables from ``tables_addr`` upwards,
    each 64-byte aligned."""
    out = AcpiTables(rsdp_addr)
    cursor = tables_addr

    def place(label: str, blob: bytes) -> int:
        nonlocal cursor
        addr = cursor
        out.blobs[addr] = blob
        out.names[label] = addr
        cursor = (cursor + len(blob) + 63) & ~63
        return addr

    dsdt_addr = place("DSDT", dsdt(virtio))
    facs_addr = place("FACS", facs())
    fadt_addr = place("FACP", fadt(dsdt_addr, facs_addr))
    madt_addr = place("APIC", madt(num_cpus))
    xsdt_addr = place("XSDT", xsdt([fadt_addr, madt_addr]))
    out.blobs[rsdp_addr] = rsdp(xsdt_addr)
    out.names["RSDP"] = rsdp_addr
    return out
