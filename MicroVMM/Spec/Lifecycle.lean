import MicroVMM.Attr

/-!
# The abstract queue lifecycle

What a virtio device's queue configuration may do, without registers: a device is reset,
being configured, active or failed; it holds one abstract configuration per queue and the guest
memory its queues must lie in. `step a b` says which changes are allowed.

The rule CVE-2026-5747 broke is the shape of `step`: the only way into `active` is from
`configuring` with a valid configuration, and an active device's configuration never changes —
only a reset (which clears it) or a failure leaves `active`.

Arithmetic here is mathematical: ranges are compared at 65 bits, so no sum wraps.
-/

namespace MicroVMM.Spec

/-- Lifecycle phases of a device (VirtIO 1.2 §3.1.1, §2.1). -/
inductive Phase where
  | reset
  | configuring
  | active
  | failed
  deriving DecidableEq, Repr

/-- The configuration of one queue. -/
structure AbsQueue where
  /-- Number of descriptors. -/
  size : BitVec 32
  /-- The queue is in use. -/
  enabled : Bool
  /-- Guest-physical address of the descriptor table. -/
  descTable : BitVec 64
  /-- Guest-physical address of the available ring. -/
  availRing : BitVec 64
  /-- Guest-physical address of the used ring. -/
  usedRing : BitVec 64
  deriving DecidableEq, Repr

/-- An abstract device with two queues. -/
structure AbsDevice where
  /-- Where the device is in its lifecycle. -/
  phase : Phase
  /-- Queue 0. -/
  q0 : AbsQueue
  /-- Queue 1. -/
  q1 : AbsQueue
  /-- First byte of the guest memory queues must lie in. -/
  memBase : BitVec 64
  /-- Size of that memory. -/
  memSize : BitVec 64
  deriving DecidableEq, Repr

/-- The configuration of a queue after reset. -/
@[mvvm] def AbsQueue.off : AbsQueue :=
  { size := 0, enabled := false, descTable := 0, availRing := 0, usedRing := 0 }

/-- `[addr, addr + len)` lies within `[base, base + size)`, computed without wrap-around. -/
@[mvvm] def within (base : BitVec 64) (size : BitVec 64) (addr : BitVec 64) (len : BitVec 65) :
    Bool :=
  (base.zeroExtend 65).ule (addr.zeroExtend 65)
    && (addr.zeroExtend 65 + len).ule (base.zeroExtend 65 + size.zeroExtend 65)

/-- An enabled queue is usable: a power-of-two size of at most 256, rings aligned
(16/2/4 bytes) and inside guest memory (VirtIO 1.2 §2.7). -/
@[mvvm] def queueUsable (d : AbsDevice) (q : AbsQueue) : Bool :=
  let n := q.size.zeroExtend 65
  q.size != 0 && q.size.ule 256 && (q.size &&& (q.size - 1)) == 0
    && (q.descTable &&& 15) == 0 && (q.availRing &&& 1) == 0 && (q.usedRing &&& 3) == 0
    && within d.memBase d.memSize q.descTable (16 * n)
    && within d.memBase d.memSize q.availRing (6 + 2 * n)
    && within d.memBase d.memSize q.usedRing (6 + 8 * n)

/-- A configuration that may become active: some queue is enabled and every enabled queue is
usable. -/
@[mvvm] def configValid (d : AbsDevice) : Bool :=
  (d.q0.enabled || d.q1.enabled)
    && (!d.q0.enabled || queueUsable d d.q0)
    && (!d.q1.enabled || queueUsable d d.q1)

/-- Both devices have the same queue configuration and memory. -/
@[mvvm] def sameConfig (a : AbsDevice) (b : AbsDevice) : Bool :=
  a.q0 == b.q0 && a.q1 == b.q1 && a.memBase == b.memBase && a.memSize == b.memSize

/-- The allowed transitions, stuttering included:
* any phase → `reset`, with every queue cleared;
* `reset` → `configuring`, configuration unchanged;
* `configuring` → `configuring`, the queues may change (memory may not);
* `configuring` → `active`, configuration unchanged and valid;
* any phase → `failed`, configuration unchanged.
There is no transition that changes the configuration of an active device. -/
@[mvvm] def step (a : AbsDevice) (b : AbsDevice) : Bool :=
  a == b
    || (b.phase == .reset && b.q0 == AbsQueue.off && b.q1 == AbsQueue.off
        && a.memBase == b.memBase && a.memSize == b.memSize)
    || (a.phase == .reset && b.phase == .configuring && sameConfig a b)
    || (a.phase == .configuring && b.phase == .configuring
        && a.memBase == b.memBase && a.memSize == b.memSize)
    || (a.phase == .configuring && b.phase == .active && sameConfig a b && configValid a)
    || (b.phase == .failed && sameConfig a b)

/-- The abstract invariant: an active device's configuration is valid. Every `step` preserves
it, since `active` is entered only with a valid configuration that no step then changes. -/
@[mvvm] def activeValid (d : AbsDevice) : Bool :=
  d.phase != .active || configValid d

end MicroVMM.Spec
