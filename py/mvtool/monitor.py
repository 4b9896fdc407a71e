"""Runtime invariant monitor over the extracted device model.

:class:`StateMonitor` is evaluated with the functions extracted from ``MicroVMM/Model`` (so the
predicates checked at run time are the ones the obligations are about, not a Python re-write).
After every step of the transport it checks the catalogue's state predicates on the new state
(``wellFormed`` and each of its conjuncts: RAM valid, status reachable, ready queues sized,
activation layout valid) and the transition properties between consecutive states:
post-activation immutability of every queue's configuration (CVE-2026-5747), the status state
machine (one new bit per step, cleared only by reset to 0), separation (a write to the selected
queue's registers leaves the other queue unchanged, a read of a queue register shows the selected
queue only, VirtIO 1.2 §4.2.2).

Guest-memory accesses are checked by :class:`mvtool.vmm.access_log.AccessMonitor`.

The monitor records :class:`Violation` objects; with ``stop=True`` the first one raises
:class:`MonitorViolation`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

#: Queue-configuration fields frozen while the device is active (CVE-2026-5747).
QUEUE_FIELDS = ("num", "ready", "desc", "driver", "device")


@dataclass(frozen=True)
class Violation:
    """One failed check: which property, at which step, on which event, and why."""

    check: str
    step: int
    event: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"check": self.check, "step": self.step, "event": self.event,
                "detail": self.detail}

    def __str__(self) -> str:
        return f"step {self.step} [{self.event}] {self.check}: {self.detail}"


class MonitorViolation(Exception):
    """Raised by the monitor in stop mode at the first violation."""

    def __init__(self, violation: Violation):
        super().__init__(str(violation))
        self.violation = violation


def const(model: ModuleType, name: str) -> int:
    """The value of a nullary Lean definition of the extracted model (a constant or a
    zero-argument function, depending on how the extractor renders it)."""
    value = getattr(model, name)
    return int(value() if callable(value) else value)


def queue_of(model: ModuleType, s: Any, i: int) -> Any:
    """``queueAt s i`` of the extracted model."""
    return model.queueAt(s, i)


def queue_tuple(q: Any) -> tuple[int, ...]:
    """The frozen configuration of one queue as a tuple (for comparison and printing)."""
    return tuple(int(getattr(q, f)) for f in QUEUE_FIELDS)


def fmt_queue(q: Any) -> str:
    """``num=… ready=… desc=… driver=… device=…`` for reports."""
    return (f"num={int(q.num):#x} ready={int(bool(q.ready))} desc={int(q.desc):#x} "
            f"driver={int(q.driver):#x} device={int(q.device):#x}")


def fmt_state(s: Any) -> str:
    """A one-line summary of a transport state for reports."""
    return (f"status={int(s.status):#x} sel={int(s.queueSel):#x} "
            f"q0[{fmt_queue(s.q0)}] q1[{fmt_queue(s.q1)}]")


@dataclass
class _Regs:
    """Register offsets and status bits, read once from the extracted model."""

    queue_fields: dict[int, str]
    queue_ready: int
    status: int
    driver_ok: int
    queue_regs: frozenset[int]

    @classmethod
    def of(cls, model: ModuleType) -> _Regs:
        c = lambda n: const(model, n)
        qf = {
            c("regQueueNum"): "num",
            c("regQueueDescLow"): "desc.lo", c("regQueueDescHigh"): "desc.hi",
            c("regQueueDriverLow"): "driver.lo", c("regQueueDriverHigh"): "driver.hi",
            c("regQueueDeviceLow"): "device.lo", c("regQueueDeviceHigh"): "device.hi",
        }
        return cls(queue_fields=qf, queue_ready=c("regQueueReady"), status=c("regStatus"),
                   driver_ok=c("statusDriverOk"),
                   queue_regs=frozenset([*qf, c("regQueueReady"), c("regQueueNumMax")]))


#: The state predicates checked after every step: catalogue name -> extracted function name.
STATE_PREDICATES: tuple[tuple[str, str], ...] = (
    ("ram-valid", "ramValid"),
    ("status-reachable", "statusReachable"),
    ("ready-queues-sized", "readyQueuesSized"),
    ("active-layout-valid", "activeLayoutValid"),
    ("well-formed", "wellFormed"),
)


@dataclass
class StateMonitor:
    """Checks the transport's state predicates and step properties with the extracted model.

    Feed it every transition with :meth:`write`, :meth:`read`, :meth:`device_step`;
    :attr:`violations` collects what failed. ``stop=True`` raises at the first violation.
    """

    model: ModuleType
    stop: bool = False
    violations: list[Violation] = field(default_factory=list)
    steps: int = 0
    max_recorded: int = 1000
    total_violations: int = 0

    def __post_init__(self) -> None:
        self._regs = _Regs.of(self.model)
        self._preds: list[tuple[str, Callable[[Any], bool]]] = [
            (name, getattr(self.model, fn)) for name, fn in STATE_PREDICATES
            if hasattr(self.model, fn)]

    # -- recording -------------------------------------------------------------------------
    def _fail(self, check: str, event: str, detail: str) -> None:
        v = Violation(check, self.steps, event, detail)
        self.total_violations += 1
        if len(self.violations) < self.max_recorded:
            self.violations.append(v)
        if self.stop:
            raise MonitorViolation(v)

    # -- checks ------------------------------------------------------------------------------
    def check_state(self, s: Any, event: str = "state") -> bool:
        """Evaluate every state predicate on ``s``; False if one failed."""
        ok = True
        for name, pred in self._preds:
            if not pred(s):
                ok = False
                self._fail(name, event, fmt_state(s))
        return ok

    def _status_step(self, pre: Any, post: Any, event: str) -> None:
        a, b = int(pre.status), int(post.status)
        if b == 0:
            return
        if a & ~b:
            self._fail("status-monotone", event,
                       f"status {a:#x} -> {b:#x} clears bits without a reset")
        elif (b & ~a).bit_count() > 1:
            self._fail("status-one-bit", event, f"status {a:#x} -> {b:#x} sets several bits")

    def _frozen(self, pre: Any, post: Any, event: str) -> None:
        # VirtIO 1.2 §4.2.2.3 + CVE-2026-5747: once DRIVER_OK is set, only a reset may change
        # a queue's configuration.
        if not int(pre.status) & self._regs.driver_ok or int(post.status) == 0:
            return
        for i, name in ((0, "q0"), (1, "q1")):
            qa, qb = getattr(pre, name), getattr(post, name)
            if queue_tuple(qa) != queue_tuple(qb):
                self._fail("post-activation-immutable", event,
                           f"queue {i} changed while active: [{fmt_queue(qa)}] -> "
                           f"[{fmt_queue(qb)}]")

    def _separation(self, pre: Any, post: Any, off: int, event: str) -> None:
        r = self._regs
        if off == r.status and int(post.status) == 0:
            return
        touched: int | None = None
        if off in r.queue_fields or off == r.queue_ready:
            touched = int(pre.queueSel)
        for i, name in ((0, "q0"), (1, "q1")):
            if i == touched:
                continue
            qa, qb = getattr(pre, name), getattr(post, name)
            if queue_tuple(qa) != queue_tuple(qb):
                self._fail("separation", event,
                           f"write to {off:#x} with QueueSel={int(pre.queueSel):#x} changed "
                           f"queue {i}: [{fmt_queue(qa)}] -> [{fmt_queue(qb)}]")

    def write(self, pre: Any, off: int, value: int, post: Any) -> None:
        """A register write ``pre --mmioWrite off value--> post``."""
        self.steps += 1
        event = f"write {off:#05x}={value:#x}"
        self.check_state(post, event)
        self._status_step(pre, post, event)
        self._frozen(pre, post, event)
        self._separation(pre, post, off, event)

    def read(self, s: Any, off: int, value: int) -> None:
        """A register read of ``off`` in state ``s`` that returned ``value``: queue registers
        show the selected queue only, and nothing of a non-existent queue."""
        self.steps += 1
        r = self._regs
        if off not in r.queue_fields and off != r.queue_ready:
            return
        sel = int(s.queueSel)
        q = queue_of(self.model, s, sel) if sel < 2 else None
        name = r.queue_fields.get(off, "ready")
        if q is None:
            expect = 0
        elif name == "ready":
            expect = int(bool(q.ready))
        elif "." in name:
            base, half = name.split(".")
            full = int(getattr(q, base))
            expect = full & 0xFFFF_FFFF if half == "lo" else full >> 32
        else:
            expect = int(getattr(q, name))
        if value != expect:
            self._fail("read-selected-queue-only", f"read {off:#05x}",
                       f"returned {value:#x}, selected queue {sel} holds {expect:#x}")

    def device_step(self, pre: Any, post: Any, what: str) -> None:
        """A device-side step (``signalUsedBuffer``, ``deviceError``)."""
        self.steps += 1
        self.check_state(post, what)
        self._status_step(pre, post, what)
        self._frozen(pre, post, what)
        for i, name in ((0, "q0"), (1, "q1")):
            if queue_tuple(getattr(pre, name)) != queue_tuple(getattr(post, name)):
                self._fail("separation", what, f"device step changed queue {i}")
