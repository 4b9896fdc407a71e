"""The VMM engine: a machine (VM, vCPU, buses, platform devices) and its run loop.

One vCPU; the in-kernel irqchip (PIC, IOAPIC, LAPIC) and PIT handle interrupts and HLT, so
the loop only sees port I/O, MMIO and the ways a run can end. The guest can never crash the
VMM: an exception raised by a device model while handling an access stops the VM with a
``device error`` result (one line naming the device), never an uncaught traceback; a device
about to touch guest memory outside what it validated at activation (the access monitor's
:class:`~mvtool.vmm.access_log.ContainmentViolation`, CVE-2026-5747) stops it with a
``containment`` result.

The exit path is the VMM's hot loop (every port and MMIO access of the guest passes through
it, and under nested emulation each Python step costs ~20x more), so it keeps to local
variables, cached bus routes and direct shim calls.
"""

from __future__ import annotations

import enum
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from mvtool.vmm import platform
from mvtool.vmm.access_log import ContainmentViolation
from mvtool.vmm.bus import Bus, Device
from mvtool.vmm.kvm import _MSG_LEN, IO_OUT, ExitKind, GuestMemory, KvmError, Vcpu, Vm
from mvtool.vmm.power import (
    I8042,
    DebugExit,
    Pm1Control,
    Pm1Event,
    PowerRequest,
    PowerState,
    ResetRegister,
)
from mvtool.vmm.rtc import RTC_PORT_BASE, CmosRtc
from mvtool.vmm.serial import Serial8250

#: KVM's private pages (real-mode TSS: 3 pages, EPT identity map: 1 page), above guest RAM and
#: below the IOAPIC/LAPIC windows.
KVM_TSS_ADDR = 0xFFFB_D000
KVM_IDENTITY_MAP_ADDR = 0xFFFB_C000

INTERNAL_SUBERRORS = {
    1: "emulation failure",
    2: "exception while delivering an exception",
    3: "failed to deliver an event",
    4: "unexpected exit reason",
}
SYSTEM_EVENTS = {1: "shutdown", 2: "reset", 3: "crash"}

TICK_SECONDS = 0.2


class StopKind(enum.Enum):
    """How a run ended."""

    POWEROFF = "poweroff"
    REBOOT = "reboot"
    DEBUG_EXIT = "debug-exit"
    TRIPLE_FAULT = "triple-fault"
    INTERNAL_ERROR = "internal-error"
    FAIL_ENTRY = "fail-entry"
    DEVICE_ERROR = "device-error"
    CONTAINMENT = "containment"
    GUEST_CRASH = "guest-crash"
    HALT = "halt"
    TIMEOUT = "timeout"
    STOPPED = "stopped"
    KVM_ERROR = "kvm-error"
    UNKNOWN_EXIT = "unknown-exit"


#: Stop kinds that mean the guest finished normally.
CLEAN_STOPS = frozenset({StopKind.POWEROFF, StopKind.REBOOT, StopKind.DEBUG_EXIT,
                         StopKind.STOPPED})


@dataclass
class RunResult:
    """Outcome of :meth:`Machine.run`."""

    kind: StopKind
    reason: str                        #: one line for people
    exits: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    debug_exit_code: int | None = None
    rip: int | None = None
    #: unclaimed accesses by bus ("pio", "mmio") and address: probes of absent hardware
    unclaimed: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def status(self) -> int:
        """Process exit status: 0 for poweroff/reboot/stop, the guest's code for a debug exit,
        1 for everything else."""
        if self.kind is StopKind.DEBUG_EXIT:
            return self.debug_exit_code or 0
        return 0 if self.kind in CLEAN_STOPS else 1


class IrqLine:
    """One GSI of the in-kernel irqchip. ``line(True)`` pulses it (edge-triggered sources
    such as the virtio-mmio devices, described as Edge in the DSDT); :meth:`set_level`
    drives it as a level (the UART's output)."""

    def __init__(self, vm: Vm, gsi: int):
        self._vm = vm
        self.gsi = gsi
        #: number of times the line was raised
        self.count = 0

    def __call__(self, level: bool = True) -> None:
        if level:
            self.pulse()

    def pulse(self) -> None:
        """Raise then lower the line: one edge."""
        self.count += 1
        self._vm.irq_line(self.gsi, True)
        self._vm.irq_line(self.gsi, False)

    def set_level(self, level: bool) -> None:
        """Drive the line high or low."""
        if level:
            self.count += 1
        self._vm.irq_line(self.gsi, level)


class _DeviceError(Exception):
    def __init__(self, message: str, kind: StopKind = StopKind.DEVICE_ERROR):
        super().__init__(message)
        self.message = message
        self.kind = kind


class Machine:
    """A VM with guest RAM, one vCPU, port-I/O and MMIO buses, a COM1 UART, ACPI power and
    reset ports and the debug-exit port.

    ``console`` receives the UART's output bytes; ``log`` receives one-line VMM messages.
    """

    def __init__(self, mem_size: int, *, kvm_path: str = "/dev/kvm",
                 console: Callable[[bytes], None] | None = None,
                 log: Callable[[str], None] | None = None):
        self.log = log or (lambda _m: None)
        self.vm = Vm(kvm_path)
        try:
            self.vm.set_tss_addr(KVM_TSS_ADDR)
            self.vm.set_identity_map_addr(KVM_IDENTITY_MAP_ADDR)
            self.vm.create_irqchip()
            self.vm.create_pit2()
            self.memory: GuestMemory = self.vm.set_memory(mem_size)
            self.vcpu: Vcpu = self.vm.create_vcpu(0)
            self.vcpu.init_lapic()
            self.vcpu.init_fpu()
        except BaseException:
            self.vm.close()
            raise
        self.pio = Bus("port I/O", self.log)
        self.mmio = Bus("MMIO", self.log)
        self.power = PowerState()
        self._serial_irq = IrqLine(self.vm, platform.SERIAL_IRQ)
        self.serial = Serial8250(console or (lambda _b: None), self._serial_irq.set_level)
        self.pio.register(platform.SERIAL_PORT_BASE, 8, self.serial, "COM1")
        self.pio.register(RTC_PORT_BASE, 2, CmosRtc(), "CMOS RTC")
        self.pio.register(platform.ACPI_PM1A_EVT_PORT, 4, Pm1Event(), "PM1a_EVT")
        self.pio.register(platform.ACPI_PM1A_CNT_PORT, 2, Pm1Control(self.power), "PM1a_CNT")
        self.pio.register(platform.ACPI_RESET_PORT, 1, ResetRegister(self.power), "RESET_REG")
        self.pio.register(platform.I8042_COMMAND_PORT, 1, I8042(self.power), "i8042")
        self.pio.register(platform.DEBUG_EXIT_PORT, 1, DebugExit(self.power), "debug-exit")
        self._stop_requested = threading.Event()

    # --- devices ------------------------------------------------------------------------
    def irq_line(self, gsi: int) -> IrqLine:
        """A callable that raises GSI ``gsi`` (for device models)."""
        return IrqLine(self.vm, gsi)

    def attach_mmio(self, base: int, size: int, device: Device, name: str | None = None) -> None:
        """Put ``device`` on the MMIO bus at [base, base+size)."""
        if self.memory.contains(base, 1) or base + size > platform.GIB * 4:
            raise ValueError(f"MMIO window {base:#x}+{size:#x} overlaps RAM or leaves 4 GiB")
        self.mmio.register(base, size, device, name)

    def attach_pio(self, base: int, size: int, device: Device, name: str | None = None) -> None:
        """Put ``device`` on the port-I/O bus at [base, base+size)."""
        self.pio.register(base, size, device, name)

    def request_stop(self) -> None:
        """Ask the run loop to stop at the next exit (any thread)."""
        self._stop_requested.set()
        self.vcpu.request_exit(True)

    # --- run loop -------------------------------------------------------------------------
    def run(self, timeout: float | None = None) -> RunResult:
        """Run the vCPU until the guest stops it, it fails, or ``timeout`` seconds pass."""
        counts = [0] * (max(ExitKind) + 1)
        start = time.monotonic()
        deadline = start + timeout if timeout else None
        use_timer = threading.current_thread() is threading.main_thread()
        old_handler: Any = None
        ticker_stop = threading.Event()
        if use_timer:
            # A SIGALRM sent to this thread every tick interrupts a KVM_RUN blocked in a halted
            # guest, so the deadline and stop requests are seen; a missed tick is caught by the
            # next. pthread_kill targets this thread: a process-wide timer signal could land on
            # another thread (e.g. the console reader) and never interrupt KVM_RUN.
            old_handler = signal.signal(signal.SIGALRM, lambda _s, _f: None)
            target = threading.get_ident()

            def tick() -> None:
                while not ticker_stop.wait(TICK_SECONDS):
                    signal.pthread_kill(target, signal.SIGALRM)

            ticker = threading.Thread(target=tick, name="vmm-ticker", daemon=True)
            ticker.start()
        try:
            result = self._loop(counts, deadline)
        finally:
            if use_timer:
                ticker_stop.set()
                ticker.join()
                signal.signal(signal.SIGALRM,
                              old_handler if old_handler is not None else signal.SIG_DFL)
        result.seconds = time.monotonic() - start
        result.exits = {k.name.lower(): counts[k] for k in ExitKind if counts[k]}
        result.unclaimed = {name: bus.unclaimed_summary()
                            for name, bus in (("pio", self.pio), ("mmio", self.mmio))
                            if bus.unclaimed}
        return result

    def _rip(self) -> int | None:
        try:
            return int(self.vcpu.get_regs().rip)
        except KvmError:
            return None

    def _loop(self, counts: list[int], deadline: float | None) -> RunResult:
        vcpu, pio, mmio, power = self.vcpu, self.pio, self.mmio, self.power
        lib, ptr, exit_, msg = vcpu._lib, vcpu._ptr, vcpu._exit, vcpu._msg
        vcpu_run, complete_io_in = lib.mv_vcpu_run, lib.mv_vcpu_complete_io_in
        complete_mmio_read = lib.mv_vcpu_complete_mmio_read
        pio_route, mmio_route = pio.route, mmio.route
        stop_requested = self._stop_requested.is_set
        K_IO, K_MMIO, K_INTR = int(ExitKind.IO), int(ExitKind.MMIO), int(ExitKind.INTR)
        ones = [(1 << (8 * n)) - 1 for n in range(9)]
        while True:
            rc = vcpu_run(ptr, exit_, msg, _MSG_LEN)
            if rc:
                try:
                    vcpu._check(rc)
                except KvmError as exc:
                    return RunResult(StopKind.KVM_ERROR, f"KVM_RUN failed: {exc}")
            kind = exit_.kind
            counts[kind] += 1
            try:
                if kind == K_IO:
                    port, size = exit_.io_port, exit_.io_size
                    if exit_.io_count != 1:
                        self._io_string(exit_, pio)
                    elif exit_.io_direction == IO_OUT:
                        m = pio_route(port, size)
                        if m is None:
                            pio.miss(port, size, "write")
                        else:
                            m.device.write(port - m.base, size, exit_.io_value)
                    else:
                        m = pio_route(port, size)
                        if m is None:
                            pio.miss(port, size, "read")
                            value = ones[size]
                        else:
                            value = m.device.read(port - m.base, size) & ones[size]
                        rc = complete_io_in(ptr, value.to_bytes(size, "little"), size, msg,
                                            _MSG_LEN)
                        if rc:
                            vcpu._check(rc)
                elif kind == K_MMIO:
                    addr, length = exit_.mmio_addr, exit_.mmio_len
                    m = mmio_route(addr, length)
                    if exit_.mmio_is_write:
                        if m is None:
                            mmio.miss(addr, length, "write")
                        else:
                            m.device.write(addr - m.base, length, exit_.mmio_value)
                    else:
                        if m is None:
                            mmio.miss(addr, length, "read")
                            value = ones[length]
                        else:
                            value = m.device.read(addr - m.base, length) & ones[length]
                        rc = complete_mmio_read(ptr, value.to_bytes(length, "little"), length,
                                                msg, _MSG_LEN)
                        if rc:
                            vcpu._check(rc)
                elif kind != K_INTR:
                    return self._terminal(exit_)
            except KvmError as exc:
                return RunResult(StopKind.KVM_ERROR, f"KVM_RUN completion failed: {exc}",
                                 rip=self._rip())
            except Exception as exc:  # noqa: BLE001 - a device model failed: stop, one line
                err = self._device_error(exit_, exc)
                self.log(err.message)
                return RunResult(err.kind, err.message, rip=self._rip())
            if power.request is not None:
                return self._power_result()
            if kind == K_INTR or stop_requested():
                if stop_requested():
                    return RunResult(StopKind.STOPPED, "stopped by the host", rip=self._rip())
                if deadline is not None and time.monotonic() >= deadline:
                    return RunResult(StopKind.TIMEOUT, "timed out", rip=self._rip())

    def _io_string(self, e: Any, pio: Bus) -> None:
        """``rep outs``/``rep ins``: one bus access per element."""
        port, size, count = e.io_port, e.io_size, e.io_count
        if e.io_direction == IO_OUT:
            data = self.vcpu.io_data(e)
            for i in range(count):
                pio.write(port, size, int.from_bytes(data[i * size:(i + 1) * size], "little"))
        else:
            self.vcpu.complete_io_in(b"".join(pio.read(port, size).to_bytes(size, "little")
                                              for _ in range(count)))

    def _device_error(self, e: Any, exc: Exception) -> _DeviceError:
        """The one-line stop reason for an exception a device raised during exit ``e``."""
        if e.kind == ExitKind.IO:
            what = "write" if e.io_direction == IO_OUT else "read"
            where = (f"{self.pio.owner(e.io_port, e.io_size) or 'port I/O'} {what} at port "
                     f"{e.io_port:#x}")
        else:
            what = "write" if e.mmio_is_write else "read"
            where = f"{self.mmio.owner(e.mmio_addr, e.mmio_len) or 'MMIO'} {what} at " \
                    f"{e.mmio_addr:#x}"
        if isinstance(exc, ContainmentViolation):
            return _DeviceError(f"ContainmentViolation at {where}: {exc}", StopKind.CONTAINMENT)
        return _DeviceError(f"device error: {where}: {type(exc).__name__}: {exc}")

    def _power_result(self) -> RunResult:
        req = self.power.request
        if req is PowerRequest.POWEROFF:
            return RunResult(StopKind.POWEROFF, "guest powered off (ACPI S5)")
        if req is PowerRequest.REBOOT:
            return RunResult(StopKind.REBOOT, "guest requested a reboot")
        code = self.power.exit_code or 0
        return RunResult(StopKind.DEBUG_EXIT, f"guest wrote {code:#04x} to the debug-exit port",
                         debug_exit_code=code)

    def _terminal(self, e: Any) -> RunResult:
        kind = e.kind
        rip = self._rip()
        at = f" at rip={rip:#x}" if rip is not None else ""
        if kind == ExitKind.SHUTDOWN:
            return RunResult(StopKind.TRIPLE_FAULT,
                             f"guest triple fault (KVM_EXIT_SHUTDOWN){at}", rip=rip)
        if kind == ExitKind.INTERNAL_ERROR:
            sub = INTERNAL_SUBERRORS.get(e.suberror, "unknown")
            data = " ".join(f"{e.data[i]:#x}" for i in range(min(e.ndata, 4)))
            extra = f", data {data}" if data else ""
            return RunResult(StopKind.INTERNAL_ERROR,
                             f"KVM internal error, suberror {e.suberror} ({sub}){at}{extra}",
                             rip=rip)
        if kind == ExitKind.FAIL_ENTRY:
            return RunResult(StopKind.FAIL_ENTRY,
                             f"KVM entry failed, hardware reason {e.fail_reason:#x}{at}", rip=rip)
        if kind == ExitKind.SYSTEM_EVENT:
            event = SYSTEM_EVENTS.get(e.event_type, f"type {e.event_type}")
            if e.event_type == 1:
                return RunResult(StopKind.POWEROFF, "guest shut down (KVM system event)")
            if e.event_type == 2:
                return RunResult(StopKind.REBOOT, "guest reset (KVM system event)")
            return RunResult(StopKind.GUEST_CRASH, f"guest system event: {event}{at}", rip=rip)
        if kind == ExitKind.HLT:
            return RunResult(StopKind.HALT, f"guest halted with no interrupt source{at}", rip=rip)
        return RunResult(StopKind.UNKNOWN_EXIT, f"unexpected KVM exit reason {e.kvm_reason}{at}",
                         rip=rip)

    def close(self) -> None:
        """Release the VM (idempotent)."""
        self.vm.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
