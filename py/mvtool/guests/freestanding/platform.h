/*
 * The guest-visible platform, as freestanding guests see it.
 *
 * Mirrors py/mvtool/vmm/platform.py value for value (tests/test_freestanding_platform.py checks
 * that both agree); change both together. Only #defines of integer literals: this header is
 * included from C, from assembly and from the linker script.
 */
#ifndef MVGUEST_PLATFORM_H
#define MVGUEST_PLATFORM_H

#define MIB 0x100000
#define GIB 0x40000000

#define RAM_LIMIT 0xC0000000
#define RAM_MIN_LINUX 0x4000000
#define RAM_MIN_FREESTANDING 0x400000

#define GDT_ADDR 0x500
#define IDT_ADDR 0x520
#define ZERO_PAGE_ADDR 0x7000
#define PML4_ADDR 0x9000
#define CMDLINE_ADDR 0x20000
#define CMDLINE_MAX 4096
#define ACPI_RSDP_ADDR 0xE0000
#define ACPI_TABLES_ADDR 0xE1000
#define EBDA_START 0x9FC00
#define HIGH_MEMORY 0x100000
#define BOOT_STACK_TOP 0x8FF0

#define FREESTANDING_LOAD_ADDR 0x200000
#define FREESTANDING_STACK_TOP 0x1F0000

#define VIRTIO_MMIO_BASE 0xD0000000
#define VIRTIO_MMIO_SIZE 0x1000
#define VIRTIO_IRQ_BASE 5

#define SERIAL_PORT_BASE 0x3F8
#define SERIAL_IRQ 4

#define ACPI_PM1A_EVT_PORT 0x600
#define ACPI_PM1A_CNT_PORT 0x604
#define ACPI_S5_SLP_TYP 5
#define ACPI_RESET_PORT 0x608
#define ACPI_RESET_VALUE 0x1
#define I8042_COMMAND_PORT 0x64
#define I8042_RESET_COMMAND 0xFE

#define DEBUG_EXIT_PORT 0xF4

#endif
