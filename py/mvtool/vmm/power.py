"""Power and reset: ACPI PM1a event/control blocks, the ACPI reset register, the i8042 reset
line and the freestanding guests' debug-exit port.

Each device records what the guest asked for in a shared :class:`PowerState`; the engine stops
the vCPU loop as soon as ``PowerState.request`` is set.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mvtool.vmm import platform

PM1_SLP_TYP_SHIFT = 10
PM1_SLP_TYP_MASK = 0x7
PM1_SLP_EN = 1 << 13
PM1_SCI_EN = 1 << 0


class PowerRequest(enum.Enum):
    """Why the guest wants the VM to stop."""

    POWEROFF = "poweroff"
    REBOOT = "reboot"
    DEBUG_EXIT = "debug-exit"


@dataclass
class PowerState:
    """The stop request, if any, and the debug-exit code of a freestanding guest."""

    request: PowerRequest | None = None
    exit_code: int | None = None


class Pm1Event:
    """PM1a_EVT_BLK (ACPI 6.5, 4.8.3.1): PM1_STS (2 bytes) then PM1_EN (2 bytes).

    No fixed events are generated, so status reads 0; the enable bits read back."""

    def __init__(self) -> None:
        self._enable = 0

    def read(self, offset: int, size: int) -> int:
        """PM1_STS is always 0; PM1_EN returns what was written."""
        value = self._enable << 16
        return (value >> (8 * offset)) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        """Writes to PM1_STS clear nothing (no status bits are ever set); PM1_EN is stored."""
        if offset >= 2:
            shift = 8 * (offset - 2)
            mask = ((1 << (8 * size)) - 1) << shift
            self._enable = ((self._enable & ~mask) | ((value << shift) & mask)) & 0xFFFF


class Pm1Control:
    """PM1a_CNT_BLK (ACPI 6.5, 4.8.3.2.1): SLP_EN with SLP_TYP = S5 powers off.

    SCI_EN reads as set: the machine is always in ACPI mode (FADT SMI_CMD = 0)."""

    def __init__(self, state: PowerState):
        self._state = state
        self._value = PM1_SCI_EN

    def read(self, offset: int, size: int) -> int:
        """The control register (SCI_EN set, SLP_EN always reads 0)."""
        return (self._value >> (8 * offset)) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        """Latch the sleep type; SLP_EN with S5 requests poweroff (other states ignored)."""
        if offset != 0:
            return
        value &= 0xFFFF if size >= 2 else 0xFF
        slp_typ = (value >> PM1_SLP_TYP_SHIFT) & PM1_SLP_TYP_MASK
        if value & PM1_SLP_EN and slp_typ == platform.ACPI_S5_SLP_TYP:
            self._state.request = PowerRequest.POWEROFF
        self._value = (value & ~PM1_SLP_EN) | PM1_SCI_EN


class ResetRegister:
    """FADT RESET_REG in I/O space: writing RESET_VALUE reboots."""

    def __init__(self, state: PowerState):
        self._state = state

    def read(self, offset: int, size: int) -> int:
        """Reads 0."""
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        """RESET_VALUE requests a reboot."""
        if offset == 0 and value & 0xFF == platform.ACPI_RESET_VALUE:
            self._state.request = PowerRequest.REBOOT


class I8042:
    """Just enough of the keyboard controller for the legacy reboot path: status reads 0
    (input buffer empty, no data) and command 0xFE pulses the reset line."""

    def __init__(self, state: PowerState):
        self._state = state

    def read(self, offset: int, size: int) -> int:
        """Status and data read 0."""
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        """Command 0xFE on the command port requests a reboot."""
        if offset == 0 and value & 0xFF == platform.I8042_RESET_COMMAND:
            self._state.request = PowerRequest.REBOOT


class DebugExit:
    """Freestanding guests end with ``out DEBUG_EXIT_PORT, al``: AL is their result."""

    def __init__(self, state: PowerState):
        self._state = state

    def read(self, offset: int, size: int) -> int:
        """Reads all-ones, like an absent port."""
        return (1 << (8 * size)) - 1

    def write(self, offset: int, size: int, value: int) -> None:
        """Record the exit code and stop the VM."""
        self._state.exit_code = value & 0xFF
        self._state.request = PowerRequest.DEBUG_EXIT
