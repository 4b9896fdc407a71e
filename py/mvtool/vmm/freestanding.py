"""Run a flat freestanding binary: the harness for test and attack guests.

The binary is copied to ``platform.FREESTANDING_LOAD_ADDR`` and entered there in 64-bit long
mode (identity page tables for [0, 4 GiB), GDT code 0x10 / data 0x18, interrupts off, RSP =
``platform.FREESTANDING_STACK_TOP``) — measured to work on KVM-PVM as on hardware KVM. A guest
prints over the COM1 UART and ends with one ``out`` of a byte to ``platform.DEBUG_EXIT_PORT``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mvtool.errors import MvtoolError
from mvtool.vmm import cpu, platform
from mvtool.vmm.engine import Machine, RunResult

DEFAULT_MEM = 16 * platform.MIB
DEFAULT_TIMEOUT = 10.0


@dataclass
class FreestandingResult:
    """What a freestanding run produced."""

    result: RunResult        #: how the run ended (``result.debug_exit_code`` is the verdict)
    output: bytes            #: everything the guest wrote to the UART

    @property
    def exit_code(self) -> int | None:
        """The byte the guest wrote to the debug-exit port, if it did."""
        return self.result.debug_exit_code


def load_binary(binary: bytes | Path) -> bytes:
    """The binary's bytes; one-line error if the file is missing or empty."""
    if isinstance(binary, (bytes, bytearray)):
        data = bytes(binary)
    else:
        try:
            data = Path(binary).read_bytes()
        except OSError as exc:
            raise MvtoolError(f"freestanding binary {binary}: {exc.strerror}") from None
    if not data:
        raise MvtoolError("freestanding binary is empty")
    return data


def prepare(machine: Machine, binary: bytes, *, long_mode: bool = True) -> None:
    """Load ``binary`` into ``machine`` and point its vCPU at it."""
    if platform.FREESTANDING_LOAD_ADDR + len(binary) > machine.memory.size:
        raise MvtoolError(f"freestanding binary ({len(binary)} bytes) does not fit in "
                          f"{machine.memory.size >> 20} MiB of guest RAM")
    machine.memory.write(platform.FREESTANDING_LOAD_ADDR, binary)
    cpu.setup_entry(machine.vcpu, machine.memory, platform.FREESTANDING_LOAD_ADDR,
                    stack=platform.FREESTANDING_STACK_TOP, long_mode=long_mode)


def run_freestanding(binary: bytes | Path, *, mem_size: int = DEFAULT_MEM,
                     kvm_path: str = "/dev/kvm", timeout: float = DEFAULT_TIMEOUT,
                     setup: Callable[[Machine], None] | None = None,
                     inspect: Callable[[Machine, RunResult], None] | None = None,
                     console: Callable[[bytes], None] | None = None,
                     log: Callable[[str], None] | None = None,
                     long_mode: bool = True) -> FreestandingResult:
    """Run a flat binary to completion.

    ``setup(machine)`` runs before the vCPU starts (attach MMIO devices with
    ``machine.attach_mmio(base, size, device, name)``, raise lines with
    ``machine.irq_line(gsi)``); ``inspect(machine, result)`` runs after it stops, while guest
    memory is still mapped. ``console`` additionally receives the UART bytes as they come.
    """
    data = load_binary(binary)
    if mem_size < platform.RAM_MIN_FREESTANDING:
        raise MvtoolError(f"freestanding guests need at least "
                          f"{platform.RAM_MIN_FREESTANDING >> 20} MiB")
    output = bytearray()

    def sink(chunk: bytes) -> None:
        output.extend(chunk)
        if console is not None:
            console(chunk)

    with Machine(mem_size, kvm_path=kvm_path, console=sink, log=log) as machine:
        prepare(machine, data, long_mode=long_mode)
        if setup is not None:
            setup(machine)
        result = machine.run(timeout=timeout)
        if inspect is not None:
            inspect(machine, result)
    return FreestandingResult(result, bytes(output))
