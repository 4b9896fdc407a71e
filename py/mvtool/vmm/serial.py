"""A 16550A-compatible UART (8250 family) for the guest console.

Enough of the chip for Linux's 8250 driver: divisor latch, scratch register, loopback (used by
the driver's probe: with MCR.LOOP set, MSR's top nibble mirrors MCR's OUT2/OUT1/RTS/DTR), FIFO
identification in IIR, the transmitter-empty (THRE) and received-data interrupts, and input
from the host. Transmission is instantaneous, so the transmitter is always empty.

Register offsets and bits: TI PC16550D datasheet / Linux include/uapi/linux/serial_reg.h.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

# Register offsets (DLAB = 0 unless noted)
RBR_THR = 0   # DLL when DLAB = 1
IER = 1       # DLM when DLAB = 1
IIR_FCR = 2
LCR = 3
MCR = 4
LSR = 5
MSR = 6
SCR = 7

IER_RDI = 0x01     # received data available
IER_THRI = 0x02    # transmitter holding register empty
IER_MASK = 0x0F

IIR_NO_INT = 0x01
IIR_THRI = 0x02
IIR_RDI = 0x04
IIR_FIFO_ENABLED = 0xC0

LCR_DLAB = 0x80

MCR_DTR = 0x01
MCR_RTS = 0x02
MCR_OUT1 = 0x04
MCR_OUT2 = 0x08
MCR_LOOP = 0x10
MCR_MASK = 0x1F

LSR_DR = 0x01
LSR_THRE = 0x20
LSR_TEMT = 0x40

MSR_CTS = 0x10
MSR_DSR = 0x20
MSR_RI = 0x40
MSR_DCD = 0x80

RX_FIFO_LIMIT = 4096

_BYTES = [bytes([i]) for i in range(256)]


class Serial8250:
    """One UART. ``sink`` receives transmitted bytes; ``irq(level)`` drives its interrupt line.

    Thread-safe: :meth:`feed` (host input) may be called from another thread than the one
    handling guest register accesses.
    """

    def __init__(self, sink: Callable[[bytes], None], irq: Callable[[bool], None]):
        self._sink = sink
        self._irq = irq
        self._lock = threading.Lock()
        self._ier = 0
        self._lcr = 0x03  # 8N1
        self._mcr = MCR_OUT2
        self._scr = 0
        self._dll = 0x0C  # 9600 baud
        self._dlm = 0
        self._fifo = False
        self._thr_pending = False
        self._rx: deque[int] = deque()
        self._line = False
        #: bytes transmitted by the guest
        self.tx_count = 0

    # --- interrupt logic -----------------------------------------------------------------
    def _iir(self) -> int:
        fifo = IIR_FIFO_ENABLED if self._fifo else 0
        if self._ier & IER_RDI and self._rx:
            return IIR_RDI | fifo
        if self._ier & IER_THRI and self._thr_pending:
            return IIR_THRI | fifo
        return IIR_NO_INT | fifo

    def _update_irq(self) -> None:
        level = (self._iir() & IIR_NO_INT) == 0
        if level != self._line:
            self._line = level
            self._irq(level)

    # --- bus device ------------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        """Register read (one byte; wider accesses read the low register only)."""
        if offset == LSR:
            # Polled before every transmitted byte; reading it changes no state.
            return LSR_THRE | LSR_TEMT | (LSR_DR if self._rx else 0)
        with self._lock:
            value = self._read(offset)
            self._update_irq()
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        """Register write (the low byte of wider accesses)."""
        out = b""
        with self._lock:
            out = self._write(offset, value & 0xFF)
            self._update_irq()
        if out:
            self._sink(out)

    def _read(self, offset: int) -> int:
        dlab = self._lcr & LCR_DLAB
        if offset == RBR_THR:
            if dlab:
                return self._dll
            return self._rx.popleft() if self._rx else 0
        if offset == IER:
            return self._dlm if dlab else self._ier
        if offset == IIR_FCR:
            iir = self._iir()
            if iir & 0x0F == IIR_THRI:
                self._thr_pending = False  # reading IIR acknowledges THRE (16550D, table 4)
            return iir
        if offset == LCR:
            return self._lcr
        if offset == MCR:
            return self._mcr
        if offset == LSR:
            return LSR_THRE | LSR_TEMT | (LSR_DR if self._rx else 0)
        if offset == MSR:
            if self._mcr & MCR_LOOP:
                m = self._mcr
                return ((MSR_CTS if m & MCR_RTS else 0) | (MSR_DSR if m & MCR_DTR else 0)
                        | (MSR_RI if m & MCR_OUT1 else 0) | (MSR_DCD if m & MCR_OUT2 else 0))
            return MSR_CTS | MSR_DSR | MSR_DCD
        if offset == SCR:
            return self._scr
        return 0xFF

    def _write(self, offset: int, value: int) -> bytes:
        dlab = self._lcr & LCR_DLAB
        if offset == RBR_THR:
            if dlab:
                self._dll = value
                return b""
            self._thr_pending = True
            if self._mcr & MCR_LOOP:
                self._push_rx(bytes([value]))
                return b""
            self.tx_count += 1
            return _BYTES[value]
        if offset == IER:
            if dlab:
                self._dlm = value
                return b""
            if value & IER_THRI and not self._ier & IER_THRI:
                self._thr_pending = True  # enabling THRI with an empty THR interrupts at once
            self._ier = value & IER_MASK
        elif offset == IIR_FCR:
            self._fifo = bool(value & 0x01)
            if value & 0x02:
                self._rx.clear()
        elif offset == LCR:
            self._lcr = value
        elif offset == MCR:
            self._mcr = value & MCR_MASK
        elif offset == SCR:
            self._scr = value
        return b""

    def _push_rx(self, data: bytes) -> None:
        room = RX_FIFO_LIMIT - len(self._rx)
        self._rx.extend(data[:max(room, 0)])

    # --- host side -----------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Queue host input for the guest to read (raises the received-data interrupt)."""
        with self._lock:
            self._push_rx(data)
            self._update_irq()
