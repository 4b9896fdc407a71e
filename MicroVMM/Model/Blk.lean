import MicroVMM.Model.Ring

/-!
# Virtio-blk request checks

The checks the block device makes on a request before it touches the backing file
(VirtIO 1.2 §5.2.6). Sector numbers and lengths come from guest memory and are adversarial.
-/

namespace MicroVMM.Model

/-- Request type IN: read sectors into the guest. -/
@[mvvm] def blkTypeIn : BitVec 32 := 0
/-- Request type OUT: write sectors from the guest. -/
@[mvvm] def blkTypeOut : BitVec 32 := 1
/-- Request type FLUSH. -/
@[mvvm] def blkTypeFlush : BitVec 32 := 4
/-- Request type GET_ID: a 20-byte device id string. -/
@[mvvm] def blkTypeGetId : BitVec 32 := 8
/-- Status byte: success. -/
@[mvvm] def blkStatusOk : BitVec 8 := 0
/-- Status byte: I/O error. -/
@[mvvm] def blkStatusIoErr : BitVec 8 := 1
/-- Status byte: unsupported request. -/
@[mvvm] def blkStatusUnsupported : BitVec 8 := 2
/-- Feature bit VIRTIO_BLK_F_RO (5): the device is read-only. -/
@[mvvm] def blkFeatureRo : BitVec 64 := 0x20
/-- Feature bit VIRTIO_BLK_F_FLUSH (9): the device supports FLUSH. -/
@[mvvm] def blkFeatureFlush : BitVec 64 := 0x200

/-- A data transfer of `len` bytes at `sector` stays inside a disk of `capacity` 512-byte
sectors and is a whole number of sectors. Written without any sum that can wrap. -/
@[mvvm] def blkRangeOk (sector : BitVec 64) (len : BitVec 32) (capacity : BitVec 64) : Bool :=
  (len &&& 511) == 0 && sector.ule capacity
    && ((len.zeroExtend 64) >>> 9).ule (capacity - sector)

/-- Byte offset in the backing file of a sector. Meaningful only under `blkRangeOk`. -/
@[mvvm] def blkByteOffset (sector : BitVec 64) : BitVec 64 :=
  sector <<< 9

end MicroVMM.Model
