"""The guest-visible platform: memory map, I/O ports and interrupt lines.

One place for every address a guest can see, so the boot loader, the ACPI tables, the device
models and the freestanding guests (``py/mvtool/guests/freestanding/platform.h`` mirrors these numbers)
agree. Guest RAM is one slot at guest-physical 0; everything else sits above ``RAM_LIMIT``.
"""

from __future__ import annotations

MIB = 1 << 20
GIB = 1 << 30

#: Guest RAM is [0, mem_size); at most RAM_LIMIT so it never meets the MMIO window below 4 GiB.
RAM_LIMIT = 3 * GIB
#: Smallest RAM a Linux guest is booted with (kernel + initramfs + page tables).
RAM_MIN_LINUX = 64 * MIB
#: Smallest RAM a freestanding guest is run with.
RAM_MIN_FREESTANDING = 4 * MIB

# --- Low memory layout used by the loader (all inside the first MiB) -----------------------
GDT_ADDR = 0x500
IDT_ADDR = 0x520
ZERO_PAGE_ADDR = 0x7000          # struct boot_params
PML4_ADDR = 0x9000               # identity page tables: PML4, PDPT, PDs follow
CMDLINE_ADDR = 0x20000
CMDLINE_MAX = 4096
ACPI_RSDP_ADDR = 0xE0000         # inside the BIOS area Linux scans for the RSDP
ACPI_TABLES_ADDR = 0xE1000
EBDA_START = 0x9FC00             # e820: [0, EBDA_START) usable, then reserved up to 1 MiB
HIGH_MEMORY = 0x100000           # 1 MiB: protected-mode kernel load address
BOOT_STACK_TOP = 0x8FF0

#: Freestanding guests are flat binaries loaded here and entered in 64-bit mode.
FREESTANDING_LOAD_ADDR = 0x200000
FREESTANDING_STACK_TOP = 0x1F0000

# --- Devices ------------------------------------------------------------------------------
#: virtio-mmio windows: device i at VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE, GSI VIRTIO_IRQ_BASE + i
VIRTIO_MMIO_BASE = 0xD000_0000
VIRTIO_MMIO_SIZE = 0x1000
VIRTIO_IRQ_BASE = 5

#: 8250 UART (COM1) and its interrupt line.
SERIAL_PORT_BASE = 0x3F8
SERIAL_IRQ = 4

#: ACPI fixed hardware (FADT): PM1a event block (4 bytes) and control block (2 bytes).
#: A write of SLP_EN with the S5 sleep type to PM1a_CNT powers the guest off.
ACPI_PM1A_EVT_PORT = 0x600
ACPI_PM1A_CNT_PORT = 0x604
ACPI_S5_SLP_TYP = 5
#: ACPI reset register (FADT RESET_REG, I/O space): writing ACPI_RESET_VALUE reboots.
ACPI_RESET_PORT = 0x608
ACPI_RESET_VALUE = 0x1
#: i8042 command port; command 0xFE pulses the CPU reset line (legacy reboot path).
I8042_COMMAND_PORT = 0x64
I8042_RESET_COMMAND = 0xFE

#: Freestanding guests report their result with one `out` of a byte to this port and stop.
DEBUG_EXIT_PORT = 0xF4
