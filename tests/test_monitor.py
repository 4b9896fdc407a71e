"""The runtime invariant monitor, evaluated with the extracted model: silent on the steps of a
correct driver, loud on each kind of broken state or step."""

from __future__ import annotations

import dataclasses

import pytest
from mvtool.monitor import MonitorViolation, StateMonitor, const

m = pytest.importorskip("mvtool._extracted.model")

RAM = 16 << 20
FEATURES = (1 << 32) | (1 << 9)


def drive(mon: StateMonitor, s, writes):
    for off, v in writes:
        post = m.mmioWrite(s, off, v)
        mon.write(s, off, v, post)
        s = post
    return s


def handshake():
    c = lambda n: const(m, n)
    seq = [(c("regStatus"), 1), (c("regStatus"), 3), (c("regDriverFeaturesSel"), 1),
           (c("regDriverFeatures"), 1), (c("regStatus"), 11)]
    for qi, base in ((0, 0x400000), (1, 0x410000)):
        seq += [(c("regQueueSel"), qi), (c("regQueueNum"), 8),
                (c("regQueueDescLow"), base), (c("regQueueDriverLow"), base + 0x1000),
                (c("regQueueDeviceLow"), base + 0x2000), (c("regQueueReady"), 1)]
    return seq + [(c("regStatus"), 15)]


def active_state(mon: StateMonitor):
    s = m.initState(2, FEATURES, 0, RAM)
    s = drive(mon, s, handshake())
    assert m.isActive(s)
    return s


def test_correct_driver_and_attacks_on_verified_model_raise_nothing():
    mon = StateMonitor(m, stop=True)
    s = active_state(mon)
    c = lambda n: const(m, n)
    # the CVE-2026-5747 rewrites and a stray selector, then reads of every queue register
    s = drive(mon, s, [(c("regQueueSel"), 0), (c("regQueueNum"), 0xFFFF),
                       (c("regQueueDescHigh"), 1), (c("regQueueReady"), 0),
                       (c("regQueueSel"), 0xFFFF_FFFF), (c("regQueueNum"), 4)])
    for off in ("regQueueNum", "regQueueReady", "regQueueDescLow", "regQueueDeviceHigh"):
        mon.read(s, c(off), m.mmioRead(s, c(off)))
    drive(mon, s, [(c("regStatus"), 0)])
    assert mon.violations == []
    assert mon.steps == len(handshake()) + 6 + 4 + 1


def test_rewrite_after_activation_is_flagged():
    mon = StateMonitor(m)
    s = active_state(mon)
    bad = dataclasses.replace(s, q0=dataclasses.replace(s.q0, num=0xFFFF))
    mon.write(s, const(m, "regQueueNum"), 0xFFFF, bad)
    checks = {v.check for v in mon.violations}
    assert "post-activation-immutable" in checks
    assert "well-formed" in checks and "ready-queues-sized" in checks


def test_status_clearing_bits_and_jumping_are_flagged():
    mon = StateMonitor(m)
    s = active_state(mon)
    mon.write(s, const(m, "regStatus"), 1, dataclasses.replace(s, status=1))
    s0 = m.initState(2, FEATURES, 0, RAM)
    mon.write(s0, const(m, "regStatus"), 3, dataclasses.replace(s0, status=3))
    assert [v.check for v in mon.violations] == ["status-monotone", "status-one-bit"]


def test_separation_and_reads_of_unselected_queue_are_flagged():
    mon = StateMonitor(m)
    s = active_state(mon)
    s = dataclasses.replace(s, status=11, queueSel=0)
    leaked = dataclasses.replace(s, q1=dataclasses.replace(s.q1, desc=0x1234000))
    mon.write(s, const(m, "regQueueDescLow"), 0x1234000, leaked)
    assert "separation" in {v.check for v in mon.violations}
    mon.read(s, const(m, "regQueueNum"), int(s.q1.num) + 1)
    assert mon.violations[-1].check == "read-selected-queue-only"


def test_stop_mode_raises_at_the_first_violation():
    mon = StateMonitor(m, stop=True)
    s = active_state(mon)
    with pytest.raises(MonitorViolation) as exc:
        mon.check_state(dataclasses.replace(s, status=0x1F))
    assert exc.value.violation.check == "status-reachable"
