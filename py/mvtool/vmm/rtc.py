"""A minimal MC146818 CMOS real-time clock on ports 0x70 (index) / 0x71 (data).

Linux reads the wall-clock time from it early in boot (before kvmclock is up, or when it is
absent); an unclaimed port reads 0xFF, which has "update in progress" set forever. The clock
reports the host's UTC time in BCD, 24-hour mode, never updating (UIP = 0); the rest of the
128 bytes of CMOS RAM read back what was written.
"""

from __future__ import annotations

import time

RTC_PORT_BASE = 0x70
REG_A = 0x0A
REG_B = 0x0B
REG_C = 0x0C
REG_D = 0x0D
CENTURY = 0x32
REG_A_DEFAULT = 0x26   # 32.768 kHz time base, 1024 Hz periodic rate, UIP clear
REG_B_24H = 0x02       # BCD (DM = 0), 24-hour
REG_D_VRT = 0x80       # valid RAM and time


def _bcd(value: int) -> int:
    return ((value // 10) << 4) | (value % 10)


class CmosRtc:
    """Index/data register pair; ``clock`` returns seconds since the epoch (host UTC)."""

    def __init__(self, clock: object = time.time):
        self._clock = clock
        self._index = 0
        self._ram = bytearray(128)
        self._ram[REG_A] = REG_A_DEFAULT
        self._ram[REG_B] = REG_B_24H
        self._ram[REG_D] = REG_D_VRT

    def _time_register(self, reg: int) -> int | None:
        t = time.gmtime(self._clock())  # type: ignore[operator]
        fields = {0: t.tm_sec, 2: t.tm_min, 4: t.tm_hour, 6: (t.tm_wday + 1) % 7 + 1,
                  7: t.tm_mday, 8: t.tm_mon, 9: t.tm_year % 100, CENTURY: t.tm_year // 100}
        value = fields.get(reg)
        return None if value is None else _bcd(value)

    def read(self, offset: int, size: int) -> int:
        """Port 0x70 reads the index; port 0x71 the selected register."""
        if offset == 0:
            return self._index
        reg = self._index
        value = self._time_register(reg)
        if value is not None:
            return value
        if reg == REG_C:
            return 0  # reading C clears pending interrupt flags; none are ever raised
        return self._ram[reg]

    def write(self, offset: int, size: int, value: int) -> None:
        """Port 0x70 selects a register (bit 7 is the NMI mask); 0x71 stores into CMOS RAM
        (time registers stay host time; A's UIP and D stay fixed)."""
        if offset == 0:
            self._index = value & 0x7F
            return
        reg = self._index
        if reg in (REG_C, REG_D):
            return
        if reg == REG_A:
            value &= 0x7F
        self._ram[reg] = value & 0xFF
