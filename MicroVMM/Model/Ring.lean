import MicroVMM.Model.Transport

/-!
# Device-side split-ring arithmetic

The addresses and lengths the device touches while it processes a queue (VirtIO 1.2 §2.7).
Everything the device reads from guest memory — the available index, ring entries, descriptor
fields — is a parameter: guest memory is adversarial input, so every obligation about these
functions holds for *all* values the guest can place there.

The device's processing loop (in the VMM) is: read the available index at `availIdxAddr`; refuse
it unless `availPendingOk`; for each new entry read the head at `availEntryAddr q i` (the index is reduced mod the queue size);
reject the head unless `descIndexValid`; read the descriptor at `descEntryAddr`; touch its buffer
only if `bufferInRam`; follow `next` only if `descHasNext` and `descIndexValid`, at most
`queue size` descriptors (`chainLengthOk`); write the used element at `usedEntryAddr` and the
used index at `usedIdxAddr`.
-/

namespace MicroVMM.Model

/-- Descriptor flag NEXT: the chain continues at `next` (VirtIO 1.2 §2.7.5). -/
@[mvvm] def descFlagNext : BitVec 16 := 1
/-- Descriptor flag WRITE: the buffer is device-writable. -/
@[mvvm] def descFlagWrite : BitVec 16 := 2
/-- Descriptor flag INDIRECT: not offered by this device (VIRTIO_F_INDIRECT_DESC not negotiated). -/
@[mvvm] def descFlagIndirect : BitVec 16 := 4

/-- The ring slot an index refers to: `idx mod num` (VirtIO 1.2 §2.7.6: the driver's index
wraps at 2¹⁶, the slot is taken modulo the queue size). -/
@[mvvm] def ringSlot (q : Queue) (idx : BitVec 16) : BitVec 64 :=
  idx.zeroExtend 64 % q.num.zeroExtend 64

/-- Address of the available ring's `idx` field. -/
@[mvvm] def availIdxAddr (q : Queue) : BitVec 64 :=
  q.driver + 2

/-- Entries the driver has published that the device has not consumed: the available index
wraps at 2¹⁶, so the difference is taken modulo 2¹⁶ (VirtIO 1.2 §2.7.6). -/
@[mvvm] def availPending (availIdx : BitVec 16) (lastAvail : BitVec 16) : BitVec 16 :=
  availIdx - lastAvail

/-- A driver never has more entries outstanding than the queue size; an available index further
ahead is corrupt or hostile, and the device treats it as an error instead of serving stale
slots. This bounds the work of one notification by the queue size. -/
@[mvvm] def availPendingOk (q : Queue) (availIdx : BitVec 16) (lastAvail : BitVec 16) : Bool :=
  ((availPending availIdx lastAvail).zeroExtend 32).ule q.num

/-- Address of the available-ring entry for running index `idx`. -/
@[mvvm] def availEntryAddr (q : Queue) (idx : BitVec 16) : BitVec 64 :=
  q.driver + 4 + 2 * ringSlot q idx

/-- A descriptor index read from guest memory refers to an existing descriptor. -/
@[mvvm] def descIndexValid (q : Queue) (i : BitVec 16) : Bool :=
  (i.zeroExtend 32).ult q.num

/-- Address of descriptor `i` (16 bytes: addr u64, len u32, flags u16, next u16). -/
@[mvvm] def descEntryAddr (q : Queue) (i : BitVec 16) : BitVec 64 :=
  q.desc + 16 * i.zeroExtend 64

/-- The chain continues after a descriptor with these flags. -/
@[mvvm] def descHasNext (flags : BitVec 16) : Bool :=
  (flags &&& descFlagNext) != 0

/-- The descriptor's buffer is written by the device. -/
@[mvvm] def descIsWriteOnly (flags : BitVec 16) : Bool :=
  (flags &&& descFlagWrite) != 0

/-- An indirect descriptor: refused, since the feature was not offered. -/
@[mvvm] def descIsIndirect (flags : BitVec 16) : Bool :=
  (flags &&& descFlagIndirect) != 0

/-- A chain may contain one more descriptor after `count` of them: no chain is longer than the
queue size (VirtIO 1.2 §2.7.5.2), which also bounds a cyclic chain a hostile guest builds. -/
@[mvvm] def chainLengthOk (q : Queue) (count : BitVec 32) : Bool :=
  count.ult q.num

/-- The device may read or write the buffer `[addr, addr + len)`: it lies inside guest RAM. -/
@[mvvm] def bufferInRam (s : State) (addr : BitVec 64) (len : BitVec 32) : Bool :=
  rangeInRam s addr (len.zeroExtend 64)

/-- Address of the used ring's `idx` field. -/
@[mvvm] def usedIdxAddr (q : Queue) : BitVec 64 :=
  q.device + 2

/-- Address of the used-ring element (id u32, len u32) for running index `idx`. -/
@[mvvm] def usedEntryAddr (q : Queue) (idx : BitVec 16) : BitVec 64 :=
  q.device + 4 + 8 * ringSlot q idx

end MicroVMM.Model
