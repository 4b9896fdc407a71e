"""Freestanding guests on real KVM: serial + debug exit, MMIO exits, faults, interrupts,
timeouts, and device errors that must stop the VM without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from kvm_util import KVM_DEVICE, assemble, needs_kvm
from mvtool.vmm import platform
from mvtool.vmm.engine import Machine, RunResult, StopKind
from mvtool.vmm.freestanding import run_freestanding

pytestmark = [needs_kvm, pytest.mark.kvm]

HEADER = f"""bits 64
org {platform.FREESTANDING_LOAD_ADDR:#x}
%define COM1 {platform.SERIAL_PORT_BASE:#x}
%define EXIT {platform.DEBUG_EXIT_PORT:#x}
%macro putc 1
  mov dx, COM1
  mov al, %1
  out dx, al
%endmacro
%macro exit 1
  mov al, %1
  out EXIT, al
  hlt
%endmacro
"""


def run(src: str, tmp_path: Path, **kw):  # type: ignore[no-untyped-def]
    return run_freestanding(assemble(HEADER + src, tmp_path), kvm_path=KVM_DEVICE, **kw)


def test_serial_output_and_debug_exit(tmp_path: Path) -> None:
    res = run("""
  mov rsi, msg
.next:
  lodsb
  test al, al
  jz .done
  mov dx, COM1
  out dx, al
  jmp .next
.done:
  exit 0x5A
msg: db "hello from long mode", 10, 0
""", tmp_path)
    assert res.output == b"hello from long mode\n"
    assert res.result.kind is StopKind.DEBUG_EXIT
    assert res.exit_code == 0x5A
    assert res.result.exits["io"] == len(b"hello from long mode\n") + 1


def test_long_mode_state_is_as_documented(tmp_path: Path) -> None:
    """CS is 64-bit selector 0x10, paging maps the top of the first 4 GiB, RSP is the
    documented stack, interrupts are off."""
    res = run(f"""
  mov ax, cs
  cmp ax, 0x10
  jne .bad
  cmp rsp, {platform.FREESTANDING_STACK_TOP:#x}
  jne .bad
  pushfq
  pop rax
  test eax, 0x200
  jnz .bad
  mov rax, cr0
  bt rax, 31
  jnc .bad
  mov rcx, 0xFFFFF000        ; identity-mapped (reads as all-ones MMIO: unclaimed)
  mov eax, [rcx]
  cmp eax, 0xFFFFFFFF
  jne .bad
  exit 1
.bad:
  exit 2
""", tmp_path)
    assert res.exit_code == 1, res.result.reason


def test_unclaimed_mmio_reads_all_ones_and_drops_writes(tmp_path: Path) -> None:
    logged: list[str] = []
    res = run(f"""
  mov rcx, {platform.VIRTIO_MMIO_BASE:#x}
  mov dword [rcx + 0x70], 0x12345678
  mov eax, [rcx + 0x70]
  cmp eax, 0xFFFFFFFF
  jne .bad
  mov ax, [rcx + 0x70]
  cmp ax, 0xFFFF
  jne .bad
  exit 3
.bad:
  exit 4
""", tmp_path, log=logged.append)
    assert res.exit_code == 3
    assert res.result.exits["mmio"] == 3
    # counted per address and reported with the result, not printed as a VMM message
    assert res.result.unclaimed == {"mmio": {f"{platform.VIRTIO_MMIO_BASE + 0x70:#x}": 3}}
    assert not [m for m in logged if "unclaimed" in m]


class Register:
    """A device: one 32-bit register that reads back what was written, plus a counter."""

    def __init__(self) -> None:
        self.value = 0
        self.accesses: list[tuple[str, int, int]] = []

    def read(self, offset: int, size: int) -> int:
        self.accesses.append(("r", offset, size))
        return self.value >> (8 * (offset % 4))

    def write(self, offset: int, size: int, value: int) -> None:
        self.accesses.append(("w", offset, size))
        self.value = value


def test_attached_mmio_device_sees_offsets_and_sizes(tmp_path: Path) -> None:
    dev = Register()
    base = platform.VIRTIO_MMIO_BASE + platform.VIRTIO_MMIO_SIZE

    def setup(m: Machine) -> None:
        m.attach_mmio(base, platform.VIRTIO_MMIO_SIZE, dev, "reg")

    res = run(f"""
  mov rcx, {base:#x}
  mov dword [rcx + 0x10], 0xCAFEF00D
  mov eax, [rcx + 0x10]
  cmp eax, 0xCAFEF00D
  jne .bad
  mov al, [rcx + 0x11]
  cmp al, 0xF0
  jne .bad
  exit 5
.bad:
  exit 6
""", tmp_path, setup=setup)
    assert res.exit_code == 5
    assert dev.accesses == [("w", 0x10, 4), ("r", 0x10, 4), ("r", 0x11, 1)]


def test_device_exception_stops_the_vm_cleanly(tmp_path: Path) -> None:
    class Broken:
        def read(self, offset: int, size: int) -> int:
            raise ZeroDivisionError("queue size 0")

        def write(self, offset: int, size: int, value: int) -> None:
            raise AssertionError("unreachable")

    def setup(m: Machine) -> None:
        m.attach_mmio(platform.VIRTIO_MMIO_BASE, platform.VIRTIO_MMIO_SIZE, Broken(), "broken")

    res = run(f"""
  mov rcx, {platform.VIRTIO_MMIO_BASE:#x}
  mov eax, [rcx + 0x38]
  exit 7
""", tmp_path, setup=setup)
    assert res.result.kind is StopKind.DEVICE_ERROR
    assert res.result.status != 0
    assert "broken read at 0xd0000038" in res.result.reason
    assert "ZeroDivisionError" in res.result.reason
    assert "\n" not in res.result.reason


def test_containment_violation_has_its_own_stop_kind(tmp_path: Path) -> None:
    """The access monitor stopping a device (CVE-2026-5747 class) is not a generic device
    error: the run ends as ``containment`` with the monitor's message, in one line."""
    from mvtool.vmm.access_log import (
        Access,
        AccessKind,
        ContainmentViolation,
        Violation,
    )

    class Escaping:
        def read(self, offset: int, size: int) -> int:
            return 0

        def write(self, offset: int, size: int, value: int) -> None:
            access = Access(AccessKind.USED_WRITE, 0x402044, 8, 0)
            raise ContainmentViolation(Violation(access, "outside the used ring"), "virtio-blk")

    def setup(m: Machine) -> None:
        m.attach_mmio(platform.VIRTIO_MMIO_BASE, platform.VIRTIO_MMIO_SIZE, Escaping(), "blk")

    res = run(f"""
  mov rcx, {platform.VIRTIO_MMIO_BASE:#x}
  mov dword [rcx + 0x50], 0
  exit 7
""", tmp_path, setup=setup)
    assert res.result.kind is StopKind.CONTAINMENT
    assert res.result.kind.value == "containment"
    assert res.result.status != 0
    assert res.result.reason.startswith("ContainmentViolation at blk write at 0xd0000050: ")
    assert "used-write of 8 byte(s) at 0x402044 (queue 0): outside the used ring" in \
        res.result.reason
    assert "\n" not in res.result.reason


def test_triple_fault_is_reported(tmp_path: Path) -> None:
    res = run("""
  mov rax, 0x123456789000    ; not mapped: #PF with no IDT -> #DF -> triple fault
  mov rbx, [rax]
  exit 8
""", tmp_path)
    assert res.result.kind is StopKind.TRIPLE_FAULT
    assert res.result.status == 1
    assert "triple fault" in res.result.reason
    assert res.result.rip == platform.FREESTANDING_LOAD_ADDR + 10


def test_halted_guest_times_out(tmp_path: Path) -> None:
    res = run("""
  cli
  hlt
""", tmp_path, timeout=0.5)
    assert res.result.kind is StopKind.TIMEOUT
    assert res.result.status == 1


def test_serial_interrupt_reaches_the_guest(tmp_path: Path) -> None:
    """IRQ 4 from the UART (THRE) through the in-kernel 8259 to an IDT handler."""
    res = run("""
IDT equ 0x210000
  mov rax, handler
  mov rdi, IDT + 0x24*16
  mov word [rdi], ax
  mov word [rdi+2], 0x10
  mov word [rdi+4], 0x8E00
  shr rax, 16
  mov word [rdi+6], ax
  shr rax, 16
  mov dword [rdi+8], eax
  mov dword [rdi+12], 0
  lidt [idtr]
  mov al, 0x11               ; 8259 init: vectors 0x20.., only IRQ 4 unmasked
  out 0x20, al
  out 0xA0, al
  mov al, 0x20
  out 0x21, al
  mov al, 0x28
  out 0xA1, al
  mov al, 4
  out 0x21, al
  mov al, 2
  out 0xA1, al
  mov al, 1
  out 0x21, al
  out 0xA1, al
  mov al, 0xEF
  out 0x21, al
  mov al, 0xFF
  out 0xA1, al
  sti
  mov dx, COM1 + 1
  mov al, 0x02               ; IER = THRI
  out dx, al
.wait:
  hlt
  jmp .wait
handler:
  mov dx, COM1 + 2
  in al, dx                  ; IIR: 0x02 = THR empty
  mov bl, al
  putc 'I'
  mov al, bl
  out EXIT, al
  hlt
idtr:
  dw 256*16-1
  dq IDT
""", tmp_path)
    assert res.output == b"I"
    assert res.exit_code == 0x02


def test_rep_outsb_to_serial(tmp_path: Path) -> None:
    res = run("""
  mov rsi, msg
  mov rcx, 5
  mov dx, COM1
  rep outsb
  exit 9
msg: db "abcde"
""", tmp_path)
    assert res.output == b"abcde"
    assert res.exit_code == 9


def test_guest_memory_inspect_after_run(tmp_path: Path) -> None:
    seen: list[int] = []

    def inspect(m: Machine, r: RunResult) -> None:
        seen.append(m.memory.read_u64(0x300000))

    res = run("""
  mov rax, 0x1122334455667788
  mov [0x300000], rax
  exit 10
""", tmp_path, inspect=inspect)
    assert res.exit_code == 10
    assert seen == [0x1122334455667788]


def test_acpi_poweroff_from_a_guest(tmp_path: Path) -> None:
    res = run(f"""
  mov dx, {platform.ACPI_PM1A_CNT_PORT:#x}
  mov ax, {(platform.ACPI_S5_SLP_TYP << 10) | (1 << 13):#x}
  out dx, ax
  exit 11
""", tmp_path)
    assert res.result.kind is StopKind.POWEROFF
    assert res.result.status == 0
