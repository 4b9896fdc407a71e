"""Platform devices without KVM: buses, the 8250 UART, power/reset ports, the CMOS clock."""

from __future__ import annotations

import calendar
import logging

import pytest
from mvtool.vmm import platform
from mvtool.vmm.bus import Bus
from mvtool.vmm.power import (
    I8042,
    DebugExit,
    Pm1Control,
    Pm1Event,
    PowerRequest,
    PowerState,
    ResetRegister,
)
from mvtool.vmm.rtc import CmosRtc
from mvtool.vmm.serial import Serial8250


class Recorder:
    def __init__(self) -> None:
        self.writes: list[tuple[int, int, int]] = []

    def read(self, offset: int, size: int) -> int:
        return 0x1000 + offset

    def write(self, offset: int, size: int, value: int) -> None:
        self.writes.append((offset, size, value))


class Exploding:
    def read(self, offset: int, size: int) -> int:
        raise RuntimeError("boom")

    def write(self, offset: int, size: int, value: int) -> None:
        raise RuntimeError("boom")


# --- bus -------------------------------------------------------------------------------------

def test_bus_routes_by_offset() -> None:
    bus = Bus("mmio")
    dev = Recorder()
    bus.register(0xD000_0000, 0x1000, dev, "dev")
    assert bus.read(0xD000_0010, 4) == 0x1010
    bus.write(0xD000_0FFC, 4, 7)
    assert dev.writes == [(0xFFC, 4, 7)]


def test_bus_unclaimed_reads_all_ones_counted_and_logged_once_at_debug(caplog) -> None:
    logged: list[str] = []
    bus = Bus("MMIO", logged.append)
    bus.register(0x1000, 0x100, Recorder(), "dev")
    with caplog.at_level(logging.DEBUG, logger="mvtool.vmm.bus"):
        assert bus.read(0x2000, 4) == 0xFFFF_FFFF
        assert bus.read(0x2000, 1) == 0xFF
        bus.write(0x2000, 2, 0x1234)
        assert bus.read(0x0FFF, 2) == 0xFFFF
        # Straddling the end of a window is not claimed by that window.
        assert bus.read(0x10FE, 4) == 0xFFFF_FFFF
    assert bus.unclaimed[0x2000] == 3
    assert bus.unclaimed_summary() == {"0xfff": 1, "0x10fe": 1, "0x2000": 3}
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len([r for r in debug if "0x2000" in r.getMessage()]) == 1
    assert len(debug) == 3
    # probes of absent hardware are not the machine's one-line messages (stderr)
    assert logged == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_bus_route_cache_follows_registration() -> None:
    bus = Bus("pio")
    assert bus.read(0x3F8, 1) == 0xFF  # unclaimed, and remembered as such
    dev = Recorder()
    bus.register(0x3F8, 8, dev, "COM1")
    assert bus.read(0x3F9, 1) == 0x01  # Recorder: 0x1000 + offset, one byte
    assert bus.read(0x3F8, 1) == 0x00
    assert bus.unclaimed[0x3F8] == 1


def test_bus_rejects_overlaps() -> None:
    bus = Bus("pio")
    bus.register(0x3F8, 8, Recorder(), "COM1")
    for base, size in ((0x3F0, 9), (0x3FF, 1), (0x3F8, 8), (0x3FA, 2)):
        with pytest.raises(ValueError, match="overlaps COM1"):
            bus.register(base, size, Recorder())
    bus.register(0x3F0, 8, Recorder())
    bus.register(0x400, 1, Recorder())


def test_bus_propagates_device_errors() -> None:
    bus = Bus("pio")
    bus.register(0x10, 1, Exploding(), "bad")
    with pytest.raises(RuntimeError):
        bus.read(0x10, 1)
    assert bus.owner(0x10) == "bad"


# --- UART ------------------------------------------------------------------------------------

class Uart:
    def __init__(self) -> None:
        self.out = bytearray()
        self.levels: list[bool] = []
        self.dev = Serial8250(self.out.extend, self.levels.append)

    def r(self, reg: int) -> int:
        return self.dev.read(reg, 1)

    def w(self, reg: int, value: int) -> None:
        self.dev.write(reg, 1, value)

    @property
    def line(self) -> bool:
        return self.levels[-1] if self.levels else False


def test_uart_transmits_and_reports_empty() -> None:
    u = Uart()
    for ch in b"hi\n":
        u.w(0, ch)
    assert bytes(u.out) == b"hi\n"
    assert u.r(5) & 0x60 == 0x60  # THRE | TEMT
    assert not u.line  # no interrupt enabled


def test_uart_scratch_and_divisor_latch() -> None:
    u = Uart()
    u.w(7, 0xA5)
    assert u.r(7) == 0xA5
    u.w(3, 0x83)  # DLAB
    u.w(0, 0x01)
    u.w(1, 0x00)
    assert (u.r(0), u.r(1)) == (0x01, 0x00)
    u.w(3, 0x03)
    u.w(0, ord("x"))  # with DLAB clear, offset 0 transmits again
    assert bytes(u.out) == b"x"


def test_uart_loopback_probe_as_linux_does() -> None:
    """drivers/tty/serial/8250/8250_port.c autoconfig: MCR = LOOP|OUT2|RTS must read back
    MSR & 0xF0 == 0x90; with plain LOOP the status bits are clear."""
    u = Uart()
    u.w(4, 0x10)
    assert u.r(6) & 0xF0 == 0x00
    u.w(4, 0x1A)
    assert u.r(6) & 0xF0 == 0x90
    u.w(0, ord("L"))  # loopback: the byte comes back, nothing is transmitted
    assert u.out == b""
    assert u.r(5) & 0x01
    assert u.r(0) == ord("L")


def test_uart_fifo_identifies_as_16550a() -> None:
    u = Uart()
    u.w(2, 0x01)
    assert u.r(2) & 0xC0 == 0xC0
    u.w(2, 0x00)
    assert u.r(2) & 0xC0 == 0x00


def test_uart_thre_interrupt_cycle() -> None:
    u = Uart()
    assert u.r(2) & 0x0F == 0x01
    u.w(1, 0x02)  # enable THRI: THR is empty, so the interrupt is pending at once
    assert u.line
    assert u.r(2) & 0x0F == 0x02
    assert not u.line  # reading IIR acknowledged it
    assert u.r(2) & 0x0F == 0x01
    u.w(0, ord("a"))  # THR written and emptied again: new interrupt
    assert u.line
    u.w(1, 0x00)  # driver disables THRI when its buffer is empty
    assert not u.line
    assert bytes(u.out) == b"a"


def test_uart_receive_interrupt() -> None:
    u = Uart()
    u.w(1, 0x01)
    assert not u.line
    u.dev.feed(b"ok")
    assert u.line
    assert u.r(2) & 0x0F == 0x04
    assert u.r(5) & 0x01
    assert u.r(0) == ord("o")
    assert u.line
    assert u.r(0) == ord("k")
    assert not u.line
    assert not u.r(5) & 0x01


# --- power and reset -------------------------------------------------------------------------

def test_pm1_control_s5_powers_off() -> None:
    st = PowerState()
    cnt = Pm1Control(st)
    assert cnt.read(0, 2) & 1  # SCI_EN: always in ACPI mode
    cnt.write(0, 2, platform.ACPI_S5_SLP_TYP << 10)  # type without SLP_EN: nothing yet
    assert st.request is None
    cnt.write(0, 2, (3 << 10) | (1 << 13))  # another sleep state: ignored
    assert st.request is None
    cnt.write(0, 2, (platform.ACPI_S5_SLP_TYP << 10) | (1 << 13))
    assert st.request is PowerRequest.POWEROFF


def test_pm1_event_block() -> None:
    evt = Pm1Event()
    assert evt.read(0, 4) == 0
    evt.write(2, 2, 0x0120)
    assert evt.read(2, 2) == 0x0120
    assert evt.read(0, 2) == 0


def test_reset_paths() -> None:
    st = PowerState()
    ResetRegister(st).write(0, 1, 0x00)
    I8042(st).write(0, 1, 0xD1)
    assert st.request is None
    ResetRegister(st).write(0, 1, platform.ACPI_RESET_VALUE)
    assert st.request is PowerRequest.REBOOT
    st2 = PowerState()
    kbd = I8042(st2)
    assert kbd.read(0, 1) & 0x02 == 0  # input buffer empty: the reboot loop can proceed
    kbd.write(0, 1, platform.I8042_RESET_COMMAND)
    assert st2.request is PowerRequest.REBOOT


def test_debug_exit_records_code() -> None:
    st = PowerState()
    DebugExit(st).write(0, 1, 0x1234)
    assert st.request is PowerRequest.DEBUG_EXIT
    assert st.exit_code == 0x34


# --- CMOS RTC --------------------------------------------------------------------------------

def test_rtc_reports_host_time_in_bcd() -> None:
    when = calendar.timegm((2026, 11, 21, 19, 58, 7, 0, 0, 0))  # a Saturday
    rtc = CmosRtc(clock=lambda: when)

    def reg(i: int) -> int:
        rtc.write(0, 1, 0x80 | i)  # bit 7 (NMI mask) is not part of the index
        return rtc.read(1, 1)

    assert [reg(i) for i in (0, 2, 4, 6, 7, 8, 9, 0x32)] == \
        [0x07, 0x58, 0x19, 0x07, 0x21, 0x11, 0x26, 0x20]
    assert reg(0x0A) & 0x80 == 0  # never "update in progress"
    assert reg(0x0B) == 0x02      # BCD, 24-hour
    assert reg(0x0D) & 0x80       # valid time
    rtc.write(0, 1, 0x40)
    rtc.write(1, 1, 0x5A)
    assert reg(0x40) == 0x5A
