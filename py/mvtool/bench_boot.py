"""Boot benchmark: our VMM against QEMU ``-M microvm``, same kernel, initramfs and disk.

Both VMMs boot the default guest (:func:`mvtool.guests.default_guest`) with the read benchmark
turned on (``protocol.READ_BENCH_PARAM``), alternating, ``rounds`` times each. Per run:

* boot-to-marker: wall time from spawning the VMM process to the guest's ``BOOT_MARKER`` line
  arriving on the VMM's console pipe (VMM start-up included, for both);
* resident memory when the marker appears, from ``/proc/<pid>/smaps``, with and without the
  guest-RAM mapping (every mapping at least as large as guest RAM counts as guest RAM);
* 64 MiB sequential O_DIRECT read throughput as measured inside the guest;
* the disk round trip, checked from the host side of the backing file.

On hosts whose KVM cannot run Linux (KVM-PVM), the whole series runs in one nested host
(:mod:`mvtool.nested`); everything there is software-emulated, so only the ratios mean much.
The per-run driver is this module's ``--inner`` entry point, run inside the host that has KVM.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mvtool.errors import MvtoolError
from mvtool.guests import default_guest
from mvtool.guests.protocol import (
    BOOT_MARKER,
    DISK_FAIL,
    DISK_OK,
    DISK_PATTERN,
    DISK_TEST_OFFSET,
    READ_BENCH_BYTES,
    READ_BENCH_PARAM,
    disk_round_trip_ok,
    parse_read_bench,
)

#: Prefix of the per-run result lines the inner driver prints (one JSON object each).
RESULT_PREFIX = "MICROVMM-BENCH-RUN "
VMMS = ("microvmm", "qemu")
DEFAULT_MEM_MIB = 256
DEFAULT_ROUNDS = 3
#: Per-boot limit inside the nested host (our VMM runs under software emulation there).
DEFAULT_RUN_TIMEOUT = 900.0
#: Disk: room for the read benchmark plus slack.
DISK_BYTES = READ_BENCH_BYTES + (8 << 20)


# --- inside the host that has KVM ---------------------------------------------------------


def qemu_argv(kernel: str, initrd: str, cmdline: str, disk: str, mem_mib: int) -> list[str]:
    """QEMU microvm with KVM booting the guest: the peer configuration.

    ``rtc=on``: with the RTC absent the guest's rtc_cmos probe polls ports that never answer
    (seconds under nested emulation); our VMM tells the guest there is no CMOS RTC instead (FADT).
    """
    return ["qemu-system-x86_64", "-M", "microvm,rtc=on", "-enable-kvm", "-cpu", "host",
            "-m", str(mem_mib), "-smp", "1", "-nodefaults", "-no-user-config",
            "-display", "none", "-serial", "stdio", "-no-reboot",
            "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
            "-drive", f"id=d0,file={disk},format=raw,if=none,cache=none",
            "-device", "virtio-blk-device,drive=d0"]


def microvmm_argv(kernel: str, initrd: str, cmdline: str, disk: str, mem_mib: int,
                  timeout: float) -> list[str]:
    """Our VMM booting the guest on this host's KVM (console on stderr, summary on stdout).
    The boot command's own entry point: ``python -m mvtool`` would import every command first."""
    return [sys.executable, "-m", "mvtool.vmm.boot_cli", "--host", "direct", "--json",
            "--kernel", kernel, "--initrd", initrd, "--cmdline", cmdline, "--disk", disk,
            "--mem", str(mem_mib), "--marker", BOOT_MARKER, "--timeout", str(timeout)]


def resident_kib(pid: int, guest_ram_bytes: int) -> tuple[int, int] | None:
    """``(rss, rss without guest RAM)`` in KiB from ``/proc/<pid>/smaps``, or None if gone."""
    total = excl = 0
    size_kib = 0
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                if line.startswith("Size:"):
                    size_kib = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
                    total += rss
                    if size_kib * 1024 < guest_ram_bytes:
                        excl += rss
    except (OSError, ValueError, IndexError):
        return None
    return total, excl


def _reset_disk(disk: str) -> None:
    """Zero the disk-test block so the round trip can only pass if the guest wrote it."""
    with open(disk, "r+b") as f:
        f.seek(DISK_TEST_OFFSET)
        f.write(bytes(len(DISK_PATTERN)))


def measure_one(vmm: str, argv: list[str], *, disk: str, mem_mib: int,
                timeout: float) -> dict:
    """Run one boot and measure it (see the module docstring)."""
    _reset_disk(disk)
    rec: dict = {"vmm": vmm, "boot_to_marker_seconds": None, "rss_kib": None,
                 "rss_excl_guest_kib": None, "read_bytes": None, "read_seconds": None,
                 "read_mib_per_s": None, "disk_line": None, "error": None}
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    except FileNotFoundError as exc:
        rec["error"] = f"{argv[0]} not found ({exc})"
        return rec
    assert proc.stdout is not None and proc.stderr is not None
    sel = selectors.DefaultSelector()
    bufs: dict[int, bytes] = {}
    stdout_data = b""
    tail: list[str] = []
    for stream in (proc.stdout, proc.stderr):
        sel.register(stream.fileno(), selectors.EVENT_READ)
        bufs[stream.fileno()] = b""
    try:
        while bufs:
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                rec["error"] = f"no exit within {timeout:.0f} s"
                break
            for key, _ in sel.select(timeout=min(left, 1.0)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                    lines = [bufs.pop(key.fd)]
                else:
                    if key.fd == proc.stdout.fileno() and vmm == "microvmm":
                        stdout_data += chunk
                    *lines, bufs[key.fd] = (bufs[key.fd] + chunk).split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace").rstrip("\r")
                    if line.strip():
                        tail = (tail + [line])[-5:]
                    if BOOT_MARKER in line and rec["boot_to_marker_seconds"] is None:
                        rec["boot_to_marker_seconds"] = time.monotonic() - start
                        mem = resident_kib(proc.pid, mem_mib << 20)
                        if mem:
                            rec["rss_kib"], rec["rss_excl_guest_kib"] = mem
                    elif line.startswith((DISK_OK, DISK_FAIL)):
                        rec["disk_line"] = line
                    elif (rb := parse_read_bench(line)) is not None:
                        rec["read_bytes"], rec["read_seconds"] = rb
                        if rb[1] > 0:
                            rec["read_mib_per_s"] = rb[0] / rb[1] / (1 << 20)
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
        rec["exit_status"] = proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    rec["total_seconds"] = time.monotonic() - start
    rec["disk_round_trip"] = disk_round_trip_ok(disk)
    if vmm == "microvmm" and stdout_data.strip():
        try:
            rec["vmm_summary"] = json.loads(stdout_data)
        except ValueError:
            pass
    if rec["error"] is None and rec["boot_to_marker_seconds"] is None:
        rec["error"] = "marker never appeared: " + (tail[-1] if tail else "no output")
    return rec


def run_series(*, rounds: int, mem_mib: int, timeout: float, vmms: tuple[str, ...],
               disk_dir: str, emit: Callable[[dict], None]) -> None:
    """Alternate the VMMs ``rounds`` times on this host; ``emit`` gets each run's record."""
    guest = default_guest()
    cmdline = f"{guest.cmdline} {READ_BENCH_PARAM}"
    with tempfile.TemporaryDirectory(prefix="bench-boot-", dir=disk_dir) as tmp:
        disk = os.path.join(tmp, "disk.img")
        with open(disk, "wb") as f:
            f.truncate(DISK_BYTES)
        for r in range(rounds):
            order = vmms if r % 2 == 0 else tuple(reversed(vmms))
            for vmm in order:
                if vmm == "qemu":
                    argv = qemu_argv(str(guest.kernel), str(guest.initrd), cmdline, disk, mem_mib)
                else:
                    argv = microvmm_argv(str(guest.kernel), str(guest.initrd), cmdline, disk,
                                         mem_mib, timeout)
                rec = measure_one(vmm, argv, disk=disk, mem_mib=mem_mib, timeout=timeout)
                rec["round"] = r
                emit(rec)


# --- outside: orchestration and summary -----------------------------------------------------


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: list[dict]) -> dict:
    """Medians per VMM and ratios ours/QEMU (only over runs that reached the marker)."""
    per: dict[str, dict] = {}
    for vmm in VMMS:
        rs = [r for r in runs if r["vmm"] == vmm]
        ok = [r for r in rs if r.get("boot_to_marker_seconds") is not None]
        per[vmm] = {
            "runs": len(rs),
            "reached_marker": len(ok),
            "disk_round_trips_ok": sum(1 for r in rs if r.get("disk_round_trip")),
            "boot_to_marker_seconds": _median([r["boot_to_marker_seconds"] for r in ok]),
            "rss_kib": _median([r["rss_kib"] for r in ok if r.get("rss_kib")]),
            "rss_excl_guest_kib": _median([r["rss_excl_guest_kib"] for r in ok
                                           if r.get("rss_excl_guest_kib")]),
            "read_mib_per_s": _median([r["read_mib_per_s"] for r in ok
                                       if r.get("read_mib_per_s")]),
            "errors": sorted({r["error"] for r in rs if r.get("error")}),
        }

    def ratio(key: str) -> float | None:
        a, b = per["microvmm"][key], per["qemu"][key]
        return a / b if a is not None and b else None

    return {"per_vmm": per, "ratios_microvmm_over_qemu": {
        "boot_to_marker_seconds": ratio("boot_to_marker_seconds"),
        "rss_excl_guest_kib": ratio("rss_excl_guest_kib"),
        "read_mib_per_s": ratio("read_mib_per_s"),
    }}


def _needs_nested() -> bool:
    try:
        from mvtool.vmm.boot_cli import is_kvm_pvm
    except ImportError:
        return Path("/sys/module/kvm_pvm").exists()
    return is_kvm_pvm()


def run_boot_bench(*, rounds: int = DEFAULT_ROUNDS, mem_mib: int = DEFAULT_MEM_MIB,
                   host: str = "auto", vmms: tuple[str, ...] = VMMS,
                   run_timeout: float = DEFAULT_RUN_TIMEOUT, progress: bool = True,
                   console_log: str | None = None) -> dict:
    """Run the boot benchmark and return runs, medians and ratios (ours / QEMU).

    ``host``: ``direct`` (this host's KVM), ``nested`` (inside :mod:`mvtool.nested`) or
    ``auto`` (nested on KVM-PVM). Raises MvtoolError on bad arguments or a missing guest.
    """
    if rounds < 1:
        raise MvtoolError(f"rounds {rounds}: must be at least 1")
    if unknown := [v for v in vmms if v not in VMMS]:
        raise MvtoolError(f"unknown VMM {unknown[0]!r} (choose from {', '.join(VMMS)})")
    if host not in ("auto", "direct", "nested"):
        raise MvtoolError(f"host {host!r}: choose direct, nested or auto")
    guest = default_guest()
    if "qemu" in vmms and shutil.which("qemu-system-x86_64") is None:
        raise MvtoolError("qemu-system-x86_64 not found (install the Debian package "
                          "qemu-system-x86)")
    where = ("nested" if _needs_nested() else "direct") if host == "auto" else host
    runs: list[dict] = []

    def say(msg: str) -> None:
        if progress:
            print(f"bench boot: {msg}", file=sys.stderr, flush=True)

    def collect(rec: dict) -> None:
        runs.append(rec)
        say(f"round {rec['round']} {rec['vmm']}: marker "
            f"{_fmt(rec['boot_to_marker_seconds'], 's')}, rss-guest "
            f"{_fmt(rec['rss_excl_guest_kib'], ' KiB', 0)}, read "
            f"{_fmt(rec['read_mib_per_s'], ' MiB/s')}, disk "
            f"{'ok' if rec['disk_round_trip'] else 'FAIL'}"
            + (f" ({rec['error']})" if rec.get("error") else ""))

    l1_up = None
    tmp_dir = tempfile.gettempdir()
    if where == "direct":
        run_series(rounds=rounds, mem_mib=mem_mib, timeout=run_timeout, vmms=vmms,
                   disk_dir=tmp_dir, emit=collect)
    else:
        from mvtool.nested import prepare_on_host, run_nested

        def on_line(line: str) -> None:
            if line.startswith(RESULT_PREFIX):
                collect(json.loads(line[len(RESULT_PREFIX):]))

        inner = [sys.executable, "-m", "mvtool.bench_boot", "--inner", "--rounds", str(rounds),
                 "--mem", str(mem_mib), "--timeout", str(run_timeout),
                 "--disk-dir", tmp_dir, "--vmm", ",".join(vmms)]
        prepare_on_host()
        res = run_nested(inner, console_log=console_log, progress=progress, echo=False,
                         on_line=on_line, timeout=120 + rounds * len(vmms) * run_timeout)
        l1_up = res.l1_up_seconds
        if res.exit_code != 0:
            err = next((ln for ln in reversed(res.lines) if ln.strip()), "no output")
            raise MvtoolError(f"bench boot: the nested driver failed (status {res.exit_code}): "
                              f"{err}")
    return {
        "host": where,
        "rounds": rounds,
        "mem_mib": mem_mib,
        "kernel": str(guest.kernel),
        "initrd": str(guest.initrd),
        "cmdline": f"{guest.cmdline} {READ_BENCH_PARAM}",
        "read_bytes": READ_BENCH_BYTES,
        "l1_up_seconds": l1_up,
        "qemu_machine": " ".join(qemu_argv("K", "I", "C", "D", mem_mib)[1:4]),
        "runs": runs,
        **summarize(runs),
    }


def _fmt(v: float | None, unit: str, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}{unit}"


def format_report(result: dict) -> str:
    """Human-readable table of :func:`run_boot_bench`'s result."""
    per, ratios = result["per_vmm"], result["ratios_microvmm_over_qemu"]
    rows = [("boot to marker (s)", "boot_to_marker_seconds", 2),
            ("RSS excl. guest RAM (KiB)", "rss_excl_guest_kib", 0),
            ("RSS total (KiB)", "rss_kib", 0),
            ("64 MiB read (MiB/s)", "read_mib_per_s", 1)]
    out = [(f"boot benchmark on {result['host']} host, {result['rounds']} rounds, "
           f"{result['mem_mib']} MiB guest (medians)"),
           f"{'':28}{'microvmm':>12}{'qemu':>12}{'ratio':>8}"]
    for label, key, digits in rows:
        a, b = per["microvmm"][key], per["qemu"][key]
        r = ratios.get(key)
        out.append(f"{label:28}{_fmt(a, '', digits):>12}{_fmt(b, '', digits):>12}"
                   f"{_fmt(r, '', 2):>8}")
    for vmm in VMMS:
        p = per[vmm]
        out.append(f"{vmm}: {p['reached_marker']}/{p['runs']} reached the marker, "
                   f"{p['disk_round_trips_ok']}/{p['runs']} disk round trips ok"
                   + (f"; errors: {'; '.join(p['errors'])}" if p["errors"] else ""))
    return "\n".join(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``mvtool bench boot`` (for the bench command to delegate to)."""
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                        help=f"boots per VMM, alternating (default {DEFAULT_ROUNDS})")
    parser.add_argument("--mem", type=int, default=DEFAULT_MEM_MIB, metavar="MiB",
                        help=f"guest RAM (default {DEFAULT_MEM_MIB})")
    parser.add_argument("--host", choices=("auto", "direct", "nested"), default="auto",
                        help="where KVM runs the guests (default: nested on KVM-PVM)")
    parser.add_argument("--vmm", default=",".join(VMMS),
                        help="comma-separated subset of: " + ", ".join(VMMS))
    parser.add_argument("--run-timeout", type=float, default=DEFAULT_RUN_TIMEOUT,
                        help="seconds allowed per boot")
    parser.add_argument("--console-log", metavar="FILE", help="nested host console log")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """``mvtool bench boot``: run the benchmark, print the table or JSON."""
    result = run_boot_bench(rounds=args.rounds, mem_mib=args.mem, host=args.host,
                            vmms=tuple(v for v in args.vmm.split(",") if v),
                            run_timeout=args.run_timeout, progress=not args.json,
                            console_log=args.console_log)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def _inner_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m mvtool.bench_boot")
    p.add_argument("--inner", action="store_true", required=True)
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    p.add_argument("--mem", type=int, default=DEFAULT_MEM_MIB)
    p.add_argument("--timeout", type=float, default=DEFAULT_RUN_TIMEOUT)
    p.add_argument("--disk-dir", default=tempfile.gettempdir())
    p.add_argument("--vmm", default=",".join(VMMS))
    a = p.parse_args(argv)
    try:
        run_series(rounds=a.rounds, mem_mib=a.mem, timeout=a.timeout,
                   vmms=tuple(a.vmm.split(",")), disk_dir=a.disk_dir,
                   emit=lambda rec: print(RESULT_PREFIX + json.dumps(rec), flush=True))
    except MvtoolError as exc:
        print(f"mvtool: error: {exc}", flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_inner_main(sys.argv[1:]))
