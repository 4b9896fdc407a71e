import MicroVMM.Model.State

/-!
# Queue layout and the activation check

Where a split virtqueue's three parts lie in guest memory (VirtIO 1.2 §2.7), and the check the
device makes when the driver sets DRIVER_OK: every ready queue has a valid size, its rings are
aligned, lie inside guest RAM and overlap neither each other nor another ready queue's rings.
Queue configuration is frozen from then until reset, so the check made here stays true for every
access the device makes while active.

All range checks are written so that no 64-bit sum can wrap around.
-/

namespace MicroVMM.Model

/-- A queue size is valid when it is non-zero, at most `queueNumMax` and a power of two
(VirtIO 1.2 §2.7: "Queue Size … is always a power of 2"; CVE-2026-5747's fix rejects size 0,
size > max and non-powers of two). -/
@[mvvm] def queueNumValid (q : Queue) : Bool :=
  q.num != 0 && q.num.ule queueNumMax && (q.num &&& (q.num - 1)) == 0

/-- Bytes of the descriptor table: 16 per descriptor (VirtIO 1.2 §2.7.5). -/
@[mvvm] def descTableLen (q : Queue) : BitVec 64 :=
  16 * q.num.zeroExtend 64

/-- Bytes of the available ring: flags, idx, `num` entries of 2 bytes, used_event
(VirtIO 1.2 §2.7.6). -/
@[mvvm] def availRingLen (q : Queue) : BitVec 64 :=
  6 + 2 * q.num.zeroExtend 64

/-- Bytes of the used ring: flags, idx, `num` entries of 8 bytes, avail_event
(VirtIO 1.2 §2.7.8). -/
@[mvvm] def usedRingLen (q : Queue) : BitVec 64 :=
  6 + 8 * q.num.zeroExtend 64

/-- `[addr, addr + len)` lies inside guest RAM. Written without any sum that can wrap. -/
@[mvvm] def rangeInRam (s : State) (addr : BitVec 64) (len : BitVec 64) : Bool :=
  s.ramBase.ule addr && len.ule s.ramSize && (addr - s.ramBase).ule (s.ramSize - len)

/-- Two ranges that both lie inside guest RAM do not overlap. -/
@[mvvm] def rangesDisjoint (a : BitVec 64) (alen : BitVec 64) (b : BitVec 64)
    (blen : BitVec 64) : Bool :=
  (a + alen).ule b || (b + blen).ule a

/-- Ring alignment (VirtIO 1.2 §2.7: descriptor table 16, available ring 2, used ring 4). -/
@[mvvm] def queueAligned (q : Queue) : Bool :=
  (q.desc &&& 15) == 0 && (q.driver &&& 1) == 0 && (q.device &&& 3) == 0

/-- The three rings of `q` lie inside guest RAM. -/
@[mvvm] def queueInRam (s : State) (q : Queue) : Bool :=
  rangeInRam s q.desc (descTableLen q) && rangeInRam s q.driver (availRingLen q)
    && rangeInRam s q.device (usedRingLen q)

/-- The three rings of `q` do not overlap one another. -/
@[mvvm] def queueRingsDisjoint (q : Queue) : Bool :=
  rangesDisjoint q.desc (descTableLen q) q.driver (availRingLen q)
    && rangesDisjoint q.desc (descTableLen q) q.device (usedRingLen q)
    && rangesDisjoint q.driver (availRingLen q) q.device (usedRingLen q)

/-- No ring of `p` overlaps a ring of `q`. -/
@[mvvm] def queuesDisjoint (p : Queue) (q : Queue) : Bool :=
  rangesDisjoint p.desc (descTableLen p) q.desc (descTableLen q)
    && rangesDisjoint p.desc (descTableLen p) q.driver (availRingLen q)
    && rangesDisjoint p.desc (descTableLen p) q.device (usedRingLen q)
    && rangesDisjoint p.driver (availRingLen p) q.desc (descTableLen q)
    && rangesDisjoint p.driver (availRingLen p) q.driver (availRingLen q)
    && rangesDisjoint p.driver (availRingLen p) q.device (usedRingLen q)
    && rangesDisjoint p.device (usedRingLen p) q.desc (descTableLen q)
    && rangesDisjoint p.device (usedRingLen p) q.driver (availRingLen q)
    && rangesDisjoint p.device (usedRingLen p) q.device (usedRingLen q)

/-- A ready queue may be activated: valid size, aligned rings, inside RAM, non-overlapping. -/
@[mvvm] def queueLayoutValid (s : State) (q : Queue) : Bool :=
  queueNumValid q && queueAligned q && queueInRam s q && queueRingsDisjoint q

/-- The activation check made when the driver sets DRIVER_OK: at least one queue is ready
(cloud-hypervisor #8190), every ready queue's layout is valid, and ready queues are disjoint. -/
@[mvvm] def activationOk (s : State) : Bool :=
  ramValid s
    && (s.q0.ready || s.q1.ready)
    && (!s.q0.ready || queueLayoutValid s s.q0)
    && (!s.q1.ready || queueLayoutValid s s.q1)
    && (!(s.q0.ready && s.q1.ready) || queuesDisjoint s.q0 s.q1)

end MicroVMM.Model
