"""``python -m mvtool boot`` as a user runs it: bad input gets one error line and a non-zero
exit (never a traceback); a tiny ELF "kernel" boots end to end through the CLI on real KVM."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from kvm_util import KVM_DEVICE, assemble, needs_kvm
from mvtool.errors import MvtoolError
from mvtool.vmm import boot_cli, platform
from test_vmm_bootloader import fake_bzimage


def mvtool(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mvtool", *args], capture_output=True,
                          text=True, timeout=timeout, check=False,
                          env=dict(os.environ, MVTOOL_DEBUG=""))


def assert_one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("mvtool: error:")]
    assert len(errors) == 1, proc.stderr
    assert needle in errors[0], proc.stderr


def elf_kernel(code: bytes, paddr: int = 0x100_0000) -> bytes:
    """An x86-64 ELF with one PT_LOAD segment holding ``code`` at ``paddr`` (entry there)."""
    ehdr = bytearray(64)
    ehdr[:4] = b"\x7fELF"
    ehdr[4], ehdr[5], ehdr[6] = 2, 1, 1
    struct.pack_into("<HHIQQQIHHHHHH", ehdr, 16, 2, 62, 1, paddr, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 120, paddr, paddr, len(code), len(code), 0x1000)
    return bytes(ehdr) + phdr + code


@pytest.fixture
def initrd(tmp_path: Path) -> Path:
    p = tmp_path / "initrd.img"
    p.write_bytes(b"07070100" * 64)
    return p


@pytest.mark.parametrize(("content", "needle"), [
    (b"\x00" * 4096, "not a bzImage (boot flag"),
    (b"MZ" + b"\x00" * 100, "too short for a setup header"),
    (fake_bzimage()[:3000], "truncated file"),
    (fake_bzimage()[:0x202] + b"XXXX" + fake_bzimage()[0x206:], "HdrS"),
    (fake_bzimage(version=0x0203), "too old"),
    (b"\x7fELF" + b"\x01" * 60, "not a little-endian x86-64 ELF"),
])
def test_bad_kernel_images(tmp_path: Path, content: bytes, needle: str) -> None:
    k = tmp_path / "kernel"
    k.write_bytes(content)
    assert_one_line_error(mvtool("boot", "--host", "direct", "--kernel", str(k)), needle)


def test_missing_kernel(tmp_path: Path) -> None:
    assert_one_line_error(mvtool("boot", "--kernel", str(tmp_path / "vmlinuz")), "no such file")


def test_missing_initrd_and_disk(tmp_path: Path) -> None:
    k = tmp_path / "kernel"
    k.write_bytes(elf_kernel(b"\xf4"))
    assert_one_line_error(mvtool("boot", "--host", "direct", "--kernel", str(k), "--initrd",
                                 str(tmp_path / "rd")), "initrd")
    assert_one_line_error(mvtool("boot", "--host", "direct", "--kernel", str(k), "--disk",
                                 str(tmp_path / "disk.img")), "disk")


@pytest.mark.parametrize(("mib", "needle"), [
    ("16", "at least 64 MiB"),
    ("4096", "at most 3072 MiB"),
])
def test_memory_size_limits(tmp_path: Path, mib: str, needle: str) -> None:
    k = tmp_path / "kernel"
    k.write_bytes(elf_kernel(b"\xf4"))
    assert_one_line_error(mvtool("boot", "--kernel", str(k), "--mem", mib), needle)


def test_memory_beyond_host_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boot_cli, "host_available_mib", lambda: 100)
    with pytest.raises(MvtoolError, match="only 100 MiB available"):
        boot_cli.check_mem(128)
    assert boot_cli.check_mem(64) == 64 * platform.MIB


@pytest.mark.parametrize("host", ["direct", "auto"])
def test_missing_kvm_device(tmp_path: Path, host: str) -> None:
    k = tmp_path / "kernel"
    k.write_bytes(elf_kernel(b"\xf4"))
    proc = mvtool("boot", "--host", host, "--kernel", str(k), "--kvm-device",
                  str(tmp_path / "kvm"))
    assert_one_line_error(proc, "does not exist")
    assert "nested" not in proc.stderr


def test_inner_argv_for_the_nested_host(tmp_path: Path) -> None:
    parser = __import__("argparse").ArgumentParser()
    boot_cli.add_arguments(parser)
    args = parser.parse_args(["--kernel", "k", "--disk", "d.img", "--mem", "128", "--json",
                              "--console-log", "c.log", "--host", "auto", "--cmdline", "a b"])
    inner = boot_cli.inner_argv(args)
    assert "--host" not in inner and "--console-log" not in inner
    assert inner[inner.index("--kernel") + 1] == str(Path("k").resolve())
    assert inner[inner.index("--disk") + 1] == str(Path("d.img").resolve())
    assert inner[inner.index("--cmdline") + 1] == "a b"
    assert "--json" in inner


BOOT_STUB = f"""bits 64
org 0x1000000
  ; check the zero page the loader built: boot flag, HdrS, cmdline pointer
  cmp word [rsi + 0x1FE], 0xAA55
  jne fail
  cmp dword [rsi + 0x202], 0x53726448
  jne fail
  mov edi, [rsi + 0x228]
  cmp byte [rdi], 'x'
  jne fail
  mov rbx, msg
.next:
  mov al, [rbx]
  test al, al
  jz .off
  mov dx, {platform.SERIAL_PORT_BASE:#x}
  out dx, al
  inc rbx
  jmp .next
.off:
  mov dx, {platform.ACPI_PM1A_CNT_PORT:#x}
  mov ax, {(platform.ACPI_S5_SLP_TYP << 10) | (1 << 13):#x}
  out dx, ax
  hlt
fail:
  mov al, 0xEE
  out {platform.DEBUG_EXIT_PORT:#x}, al
  hlt
msg: db "early noise", 13, 10, "STUB-BOOTED", 13, 10, 0
"""


@needs_kvm
@pytest.mark.kvm
def test_cli_boots_an_elf_stub_to_its_marker(tmp_path: Path, initrd: Path) -> None:
    k = tmp_path / "vmlinux"
    k.write_bytes(elf_kernel(assemble(BOOT_STUB, tmp_path)))
    log = tmp_path / "console.log"
    proc = mvtool("boot", "--host", "direct", "--kvm-device", KVM_DEVICE, "--kernel", str(k),
                  "--initrd", str(initrd), "--cmdline", "xyz", "--marker", "STUB-BOOTED",
                  "--mem", "64", "--timeout", "20", "--console-log", str(log), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["host"] == "direct"
    assert summary["kernel_format"] == "vmlinux"
    assert summary["exit_reason"] == "poweroff"
    assert summary["boot_to_marker_seconds"] is not None
    assert summary["exits"]["io"] == len("early noise\r\nSTUB-BOOTED\r\n") + 1
    assert log.read_bytes() == b"early noise\r\nSTUB-BOOTED\r\n"


@needs_kvm
@pytest.mark.kvm
@pytest.mark.parametrize("disk_line,status", [
    ("MICROVMM-DISK-FAIL write: dd: error writing '/dev/vda': I/O error", 1),
    ("MICROVMM-DISK-OK 1234", 0),
])
def test_json_status_follows_the_guest_disk_test(tmp_path: Path, disk_line: str,
                                                 status: int) -> None:
    """A guest that booted and powered off but reported DISK-FAIL did not do its job: the
    status is non-zero, with the guest's reason; DISK-OK keeps it 0. Run through the boot
    command's own entry point (what the benchmark uses)."""
    src = BOOT_STUB.replace('"STUB-BOOTED", 13, 10, 0', f'"STUB-BOOTED", 13, 10, "{disk_line}", 10, 0')
    k = tmp_path / "vmlinux"
    k.write_bytes(elf_kernel(assemble(src, tmp_path)))
    proc = subprocess.run([sys.executable, "-m", "mvtool.vmm.boot_cli", "--host", "direct",
                           "--kvm-device", KVM_DEVICE, "--kernel", str(k), "--cmdline", "x",
                           "--marker", "STUB-BOOTED", "--mem", "64", "--timeout", "20",
                           "--console-log", str(tmp_path / "c.log"), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["exit_reason"] == "poweroff"
    assert (proc.returncode, summary["status"]) == (status, status)
    if status:
        assert summary["disk_round_trip"].startswith("fail")
        assert "guest disk test failed (write: dd: error writing" in summary["exit_detail"]
    else:
        assert summary["disk_round_trip"] == "ok"
    # a clean boot says nothing on stderr (no notices about probed, absent hardware)
    assert proc.stderr == ""


@needs_kvm
@pytest.mark.kvm
def test_cli_reports_missing_marker_as_failure(tmp_path: Path) -> None:
    k = tmp_path / "vmlinux"
    k.write_bytes(elf_kernel(assemble(BOOT_STUB, tmp_path)))
    proc = mvtool("boot", "--host", "direct", "--kvm-device", KVM_DEVICE, "--kernel", str(k),
                  "--cmdline", "x", "--marker", "NEVER-PRINTED", "--mem", "64", "--timeout", "20",
                  "--console-log", str(tmp_path / "c.log"))
    assert_one_line_error(proc, "marker 'NEVER-PRINTED' never appeared")


@needs_kvm
@pytest.mark.kvm
def test_cli_bad_zero_page_shows_as_debug_exit(tmp_path: Path) -> None:
    """The stub rejects a command line that does not start with 'x': the loader's cmdline
    pointer is checked by the guest itself (the test can fail)."""
    k = tmp_path / "vmlinux"
    k.write_bytes(elf_kernel(assemble(BOOT_STUB, tmp_path)))
    proc = mvtool("boot", "--host", "direct", "--kvm-device", KVM_DEVICE, "--kernel", str(k),
                  "--cmdline", "console=ttyS0", "--mem", "64", "--timeout", "20", "--json",
                  "--console-log", str(tmp_path / "c.log"))
    summary = json.loads(proc.stdout)
    assert summary["exit_reason"] == "debug-exit"
    assert proc.returncode == 0xEE
