"""``python -m mvtool boot``: boot a Linux guest on KVM with virtio-blk disks and a serial console.

On a host whose KVM cannot run an unmodified Linux (KVM-PVM), ``--host auto`` re-runs the same
boot inside the nested software-emulated host (:mod:`mvtool.nested`), which has real KVM.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from mvtool.errors import MvtoolError
from mvtool.vmm import platform

DEFAULT_TIMEOUT = 300.0
NESTED_MARGIN = 240.0  # seconds on top of --timeout for bringing the nested host up
MODEL_CHOICES = ("verified", "vulnerable")
TWIN_WARNING = ("WARNING: the virtio devices run the VULNERABLE TWIN model (mutant "
                "vulnerable_twin: queue registers writable after DRIVER_OK, CVE-2026-5747); "
                "it exists only to demonstrate the attack")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the boot options."""
    parser.add_argument("--kernel", help="vmlinux ELF or bzImage (default: the built guest's)")
    parser.add_argument("--initrd", help="initramfs (default: the built guest's when --kernel "
                        "is not given)")
    parser.add_argument("--disk", action="append", default=[], metavar="FILE",
                        help="virtio-blk backing file (repeatable: vda, vdb, ...)")
    parser.add_argument("--disk-readonly", action="store_true",
                        help="attach every --disk read-only")
    parser.add_argument("--no-disk", action="store_true",
                        help="boot the default guest without its scratch disk (by default it "
                        "gets a fresh one in the build cache, for its disk round trip)")
    parser.add_argument("--mem", type=int, default=256, metavar="MiB",
                        help="guest RAM in MiB (default 256)")
    parser.add_argument("--cmdline", help="kernel command line (default: the built guest's, or "
                        "'console=ttyS0' with --kernel)")
    parser.add_argument("--console-log", metavar="FILE",
                        help="write the guest console here instead of stdout")
    parser.add_argument("--kvm-device", default="/dev/kvm", metavar="PATH",
                        help="KVM device (default /dev/kvm)")
    parser.add_argument("--host", choices=("direct", "nested", "auto"), default="auto",
                        help="run on this host's KVM, inside the nested host, or decide (default)")
    parser.add_argument("--marker", help="console line that means 'booted' (default: the built "
                        "guest's marker when booting it)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"seconds before the guest is stopped (default {DEFAULT_TIMEOUT:.0f})")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    parser.add_argument("--model", choices=MODEL_CHOICES, default="verified",
                        help="transport model of the virtio devices: the verified extraction "
                        "(default) or its vulnerable twin (pre-fix CVE-2026-5747 behaviour; "
                        "only for the attack demonstration)")
    parser.add_argument("--model-file", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--host-label", default=None, help=argparse.SUPPRESS)


# --- argument checks ------------------------------------------------------------------------

def host_available_mib() -> int | None:
    """MemAvailable from /proc/meminfo, in MiB (None if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_mem(mib: int) -> int:
    """Guest RAM in bytes, or a one-line error if too small, too large or beyond host memory."""
    size = mib * platform.MIB
    if size < platform.RAM_MIN_LINUX:
        raise MvtoolError(f"--mem {mib}: a Linux guest needs at least "
                          f"{platform.RAM_MIN_LINUX >> 20} MiB")
    if size > platform.RAM_LIMIT:
        raise MvtoolError(f"--mem {mib}: at most {platform.RAM_LIMIT >> 20} MiB (guest RAM must "
                          "stay below the MMIO window)")
    avail = host_available_mib()
    if avail is not None and mib > avail:
        raise MvtoolError(f"--mem {mib}: the host has only {avail} MiB available")
    return size


def check_kvm_device(path: str) -> None:
    """One-line error if the KVM device is missing or not accessible."""
    if not os.path.exists(path):
        raise MvtoolError(f"KVM device {path} does not exist (no KVM on this host?)")
    if not os.access(path, os.R_OK | os.W_OK):
        raise MvtoolError(f"KVM device {path} is not readable and writable by this user")


def is_kvm_pvm() -> bool:
    """Whether this host's KVM is KVM-PVM (module kvm_pvm, or no VMX/SVM CPU flag), which runs
    freestanding guests but not an unmodified Linux."""
    if Path("/sys/module/kvm_pvm").exists():
        return True
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return "vmx" not in flags and "svm" not in flags
    except OSError:
        return False
    return False


@dataclass
class BootPlan:
    """Resolved inputs of a boot."""

    kernel: Path
    initrd: Path | None
    cmdline: str
    marker: str | None
    disks: list[Path] = field(default_factory=list)


def resolve(args: argparse.Namespace) -> BootPlan:
    """Fill defaults from the built guest; one-line errors for missing files."""
    marker = args.marker
    if args.kernel is None:
        try:
            from mvtool.guests import default_guest
        except ImportError as exc:
            raise MvtoolError(f"no --kernel given and the default guest is unavailable ({exc})"
                              ) from None
        guest = default_guest()
        kernel, initrd, cmdline = Path(guest.kernel), Path(guest.initrd), guest.cmdline
        if args.initrd is not None:
            initrd = Path(args.initrd)
        if marker is None:
            try:
                from mvtool.guests.protocol import BOOT_MARKER
                marker = BOOT_MARKER
            except ImportError:
                marker = None
    else:
        kernel = Path(args.kernel)
        initrd = Path(args.initrd) if args.initrd else None
        cmdline = "console=ttyS0"
    if args.cmdline is not None:
        cmdline = args.cmdline
    if not kernel.exists():
        raise MvtoolError(f"kernel {kernel}: no such file")
    if not kernel.is_file():
        raise MvtoolError(f"kernel {kernel}: not a regular file")
    if initrd is not None and not initrd.is_file():
        raise MvtoolError(f"initrd {initrd}: no such file")
    return BootPlan(kernel, initrd, cmdline, marker, [Path(d) for d in args.disk])


def validate_kernel(path: Path) -> None:
    """Check the kernel image's headers without loading it (so a bad image fails fast, before
    any nested host is started)."""
    from mvtool.vmm import bootloader

    with open(path, "rb") as f:
        head = f.read(64 * 1024)
    if bootloader.is_elf(head):
        if len(head) < 64 or head[4] != 2 or head[5] != 1 or head[18:20] != b"\x3e\x00":
            raise MvtoolError(f"kernel {path}: not a little-endian x86-64 ELF")
        return
    bootloader.parse_setup_header(bootloader.read_kernel_file(path), f"kernel {path}")


# --- console ---------------------------------------------------------------------------------

class Console:
    """Guest console sink: copies bytes to a stream and watches complete lines for the marker
    and the default guest's disk-test result."""

    def __init__(self, out: IO[bytes], marker: str | None):
        self._out = out
        self._marker = marker
        self._partial = bytearray()
        self.t0 = time.monotonic()
        self.marker_seconds: float | None = None
        self.disk_result: str | None = None
        self.lines: list[str] = []
        self._disk_ok, self._disk_fail = _disk_markers()

    def __call__(self, data: bytes) -> None:
        self._out.write(data)
        if b"\n" in data:
            self._out.flush()
        self._partial.extend(data)
        while b"\n" in self._partial:
            raw, _, rest = bytes(self._partial).partition(b"\n")
            self._partial = bytearray(rest)
            self._line(raw.decode(errors="replace").rstrip("\r"))

    def _line(self, line: str) -> None:
        if len(self.lines) < 2000:
            self.lines.append(line)
        if self._marker and self.marker_seconds is None and self._marker in line:
            self.marker_seconds = time.monotonic() - self.t0
        if self._disk_ok and line.startswith(self._disk_ok):
            self.disk_result = "ok"
        elif self._disk_fail and line.startswith(self._disk_fail):
            self.disk_result = "fail: " + line[len(self._disk_fail):].strip()

    def flush(self) -> None:
        """Flush the stream."""
        self._out.flush()


def _disk_markers() -> tuple[str | None, str | None]:
    try:
        from mvtool.guests.protocol import DISK_FAIL, DISK_OK
    except ImportError:
        return None, None
    return DISK_OK, DISK_FAIL


def _stdin_feeder(feed: Callable[[bytes], None]) -> None:
    """Forward stdin to the UART (interactive sessions)."""
    def pump() -> None:
        while True:
            try:
                chunk = os.read(0, 1024)
            except OSError:
                return
            if not chunk:
                return
            feed(chunk.replace(b"\n", b"\r"))

    threading.Thread(target=pump, name="console-input", daemon=True).start()


# --- device model ---------------------------------------------------------------------------

def device_model(args: argparse.Namespace) -> ModuleType | None:
    """The transport model module of ``--model`` (None: the devices' default, verified).

    The twin is extracted on demand by :func:`mvtool.attack.load_model` (cached); a run inside
    the nested host gets the cached file's path (``--model-file``) so that it does not repeat
    the extraction check under software emulation."""
    if args.model == "verified":
        return None
    if args.model_file:
        import importlib.util

        spec = importlib.util.spec_from_file_location("mvtool_twin_model", args.model_file)
        if spec is None or spec.loader is None or not Path(args.model_file).is_file():
            raise MvtoolError(f"model file {args.model_file}: cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    from mvtool.attack import load_model

    return load_model(args.model)


# --- run ------------------------------------------------------------------------------------

def _log(message: str) -> None:
    print(f"mvtool: {message}", file=sys.stderr, flush=True)


def run_direct(args: argparse.Namespace, plan: BootPlan, mem_size: int) -> int:
    """Boot on this host's KVM."""
    from mvtool.vmm.engine import Machine
    from mvtool.vmm.linux import Disk, check_disk, setup_linux

    disks = [Disk(p, args.disk_readonly) for p in plan.disks]
    for d in disks:
        check_disk(d)
    check_kvm_device(args.kvm_device)
    log_file = None
    if args.console_log:
        try:
            log_file = open(args.console_log, "wb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise MvtoolError(f"--console-log {args.console_log}: {exc.strerror}") from None
        out: IO[bytes] = log_file
    else:
        out = sys.stderr.buffer if args.json else sys.stdout.buffer
    model = device_model(args)
    if model is not None:
        _log(TWIN_WARNING)
    console = Console(out, plan.marker)
    t_start = time.monotonic()
    try:
        with Machine(mem_size, kvm_path=args.kvm_device, console=console, log=_log) as machine:
            setup = setup_linux(machine, plan.kernel, plan.initrd, plan.cmdline, disks, _log,
                                model)
            if sys.stdin.isatty() and not args.json:
                _stdin_feeder(machine.serial.feed)
            console.t0 = time.monotonic()
            result = machine.run(timeout=args.timeout)
    finally:
        console.flush()
        if log_file is not None:
            log_file.close()
    status = result.status
    reason = result.reason
    if status == 0 and plan.marker and console.marker_seconds is None:
        status = 1
        reason = f"{reason}; marker {plan.marker!r} never appeared"
    if status == 0 and console.disk_result is not None and console.disk_result != "ok":
        # The guest booted but its disk round trip failed: the run did not do its job.
        status = 1
        reason = f"{reason}; guest disk test failed ({console.disk_result[len('fail: '):]})"
    summary = {
        "host": args.host_label or "direct",
        "kernel": str(plan.kernel),
        "kernel_format": setup.kernel.kind,
        "initrd": str(plan.initrd) if plan.initrd else None,
        "mem_mib": mem_size >> 20,
        "model": args.model,
        "marker": plan.marker,
        "boot_to_marker_seconds": console.marker_seconds,
        "run_seconds": result.seconds,
        "total_seconds": time.monotonic() - t_start,
        "exit_reason": result.kind.value,
        "exit_detail": reason,
        "exits": result.exits,
        "unclaimed": result.unclaimed,
        "virtio": _virtio_stats(machine),
        "disks": [str(d) for d in plan.disks],
        "disks_attached": len(setup.virtio_slots),
        "virtio_missing": setup.virtio_missing,
        "disk_round_trip": console.disk_result,
        "status": status,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        marker = (f", marker after {console.marker_seconds:.2f}s"
                  if console.marker_seconds is not None else "")
        _log(f"guest stopped: {reason}{marker}")
    if status != 0 and not args.json:
        print(f"mvtool: error: {reason}", file=sys.stderr)
    return status


def _virtio_stats(machine: Any) -> list[dict[str, Any]]:
    """Counters of the virtio devices on the MMIO bus, for the JSON summary."""
    out = []
    for mapping in machine.mmio.mappings:
        dev = mapping.device
        if not hasattr(dev, "monitor") or not hasattr(dev, "requests"):
            continue
        backend = dev.backend
        out.append({
            "name": mapping.name,
            "requests": dev.requests,
            "descriptors": dev.descriptors,
            "device_errors": len(dev.device_errors),
            "device_errors_first": list(dev.device_errors[:3]),
            "ignored_writes": dict(dev.ignored_writes),
            "bytes_read": getattr(backend, "bytes_read", None),
            "bytes_written": getattr(backend, "bytes_written", None),
            "accesses_checked": sum(dev.monitor.accesses.values()),
            "outside_validated_regions": dev.monitor.violation_count,
        })
    return out


def inner_argv(args: argparse.Namespace) -> list[str]:
    """The boot arguments for the run inside the nested host: paths made absolute (its working
    directory differs), without --host/--console-log (set by the nested run itself)."""
    out: list[str] = []
    if args.kernel:
        out += ["--kernel", str(Path(args.kernel).resolve())]
    if args.initrd:
        out += ["--initrd", str(Path(args.initrd).resolve())]
    for d in args.disk:
        out += ["--disk", str(Path(d).resolve())]
    if args.disk_readonly:
        out.append("--disk-readonly")
    out += ["--mem", str(args.mem), "--timeout", str(args.timeout)]
    if args.cmdline is not None:
        out += ["--cmdline", args.cmdline]
    if args.marker is not None:
        out += ["--marker", args.marker]
    if args.json:
        out.append("--json")
    if args.model != "verified":
        out += ["--model", args.model]
    if args.model_file:
        out += ["--model-file", str(Path(args.model_file).resolve())]
    return out


def run_nested(args: argparse.Namespace, announce: bool) -> int:
    """Re-run this boot with ``--host direct`` inside the nested host."""
    try:
        from mvtool.nested import run_in_nested_host
    except ImportError as exc:
        raise MvtoolError(f"the nested host is not available ({exc})") from None
    if announce:
        _log("this host's KVM (KVM-PVM) cannot run Linux; booting inside the nested "
             "software-emulated host (slow)")
    if args.model != "verified" and not args.model_file:
        # Extract (or find cached) on the host: the repository is read-only inside.
        module = device_model(args)
        args.model_file = getattr(module, "__file__", None)
    inner = ["boot", "--host", "direct", "--host-label", "nested", *inner_argv(args)]
    import tempfile

    writable = {tempfile.gettempdir()}
    for d in args.disk:
        if not args.disk_readonly:
            writable.add(str(Path(d).resolve().parent))
    from mvtool.paths import CACHE_DIR
    writable.add(str(CACHE_DIR))
    return run_in_nested_host(inner, console_log=args.console_log,
                              timeout=args.timeout + NESTED_MARGIN, progress=not args.json,
                              writable=sorted(writable))


def default_scratch_disk() -> Path:
    """A fresh, zeroed scratch disk for the default guest's disk round trip, in the build cache
    (shared with the nested host)."""
    from mvtool.guests.protocol import DISK_MIN_BYTES
    from mvtool.paths import CACHE_DIR

    disk = CACHE_DIR / "guest" / "scratch-disk.img"
    disk.parent.mkdir(parents=True, exist_ok=True)
    with open(disk, "wb") as f:
        f.truncate(DISK_MIN_BYTES + (1 << 20))
    return disk


def run(args: argparse.Namespace) -> int:
    """Entry point of ``mvtool boot``."""
    mem_size = check_mem(args.mem)
    if args.kernel is None and not args.disk and not args.no_disk:
        resolve(args)  # the default guest must exist before a disk is made for it
        args.disk = [str(default_scratch_disk())]
    if args.timeout <= 0:
        raise MvtoolError(f"--timeout {args.timeout}: must be positive")
    plan = resolve(args)
    validate_kernel(plan.kernel)
    for d in plan.disks:
        if not d.is_file():
            raise MvtoolError(f"disk {d}: no such file")
    host = args.host
    if host != "nested":
        # Checked before choosing a host: a KVM device named on the command line that does not
        # exist is a user error, not a reason to fall back to the nested host.
        check_kvm_device(args.kvm_device)
    if host == "auto":
        host = "nested" if is_kvm_pvm() else "direct"
        announce = host == "nested"
    else:
        announce = False
    if host == "nested":
        return run_nested(args, announce)
    return run_direct(args, plan, mem_size)


def main(argv: list[str] | None = None) -> int:
    """``python -m mvtool.vmm.boot_cli``: the same as ``python -m mvtool boot`` without loading
    the other commands (start-up time counts in boot benchmarks, and under nested emulation
    importing every command costs seconds)."""
    parser = argparse.ArgumentParser(prog="mvtool boot",
                                     description="boot a guest on KVM with the extracted device "
                                     "model")
    add_arguments(parser)
    args = parser.parse_args(argv)
    from mvtool.cli import run_reporting_errors

    return run_reporting_errors(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
