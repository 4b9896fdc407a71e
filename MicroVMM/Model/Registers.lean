import MicroVMM.Attr

/-!
# Virtio-mmio register map and constants

Register offsets of the virtio-mmio transport, version 2 (VirtIO 1.2 §4.2.2, Linux
`include/uapi/linux/virtio_mmio.h`), device status bits (VirtIO 1.2 §2.1) and the limits this
device enforces. All registers are 32 bits wide and accessed with 32-bit aligned accesses
(VirtIO 1.2 §4.2.2.2); the device-specific configuration space starts at `0x100`.
-/

namespace MicroVMM.Model

/-- `MagicValue` (R): `0x74726976`, "virt" in little-endian. -/
@[mvvm] def regMagicValue : BitVec 32 := 0x000
/-- `Version` (R): 2 for the non-legacy transport. -/
@[mvvm] def regVersion : BitVec 32 := 0x004
/-- `DeviceID` (R): the virtio device type (2 = block). -/
@[mvvm] def regDeviceId : BitVec 32 := 0x008
/-- `VendorID` (R). -/
@[mvvm] def regVendorId : BitVec 32 := 0x00c
/-- `DeviceFeatures` (R): the 32-bit word of offered features selected by `DeviceFeaturesSel`. -/
@[mvvm] def regDeviceFeatures : BitVec 32 := 0x010
/-- `DeviceFeaturesSel` (W). -/
@[mvvm] def regDeviceFeaturesSel : BitVec 32 := 0x014
/-- `DriverFeatures` (W): the 32-bit word of accepted features selected by `DriverFeaturesSel`. -/
@[mvvm] def regDriverFeatures : BitVec 32 := 0x020
/-- `DriverFeaturesSel` (W). -/
@[mvvm] def regDriverFeaturesSel : BitVec 32 := 0x024
/-- `QueueSel` (W): selects the queue the queue registers below refer to. -/
@[mvvm] def regQueueSel : BitVec 32 := 0x030
/-- `QueueNumMax` (R): maximum size of the selected queue, 0 if it does not exist. -/
@[mvvm] def regQueueNumMax : BitVec 32 := 0x034
/-- `QueueNum` (W): size of the selected queue. -/
@[mvvm] def regQueueNum : BitVec 32 := 0x038
/-- `QueueReady` (RW): the selected queue is live. -/
@[mvvm] def regQueueReady : BitVec 32 := 0x044
/-- `QueueNotify` (W): the driver has new buffers in the queue whose index is written. -/
@[mvvm] def regQueueNotify : BitVec 32 := 0x050
/-- `InterruptStatus` (R): bit 0 used buffer, bit 1 configuration change. -/
@[mvvm] def regInterruptStatus : BitVec 32 := 0x060
/-- `InterruptACK` (W): clears the interrupt bits written as 1. -/
@[mvvm] def regInterruptAck : BitVec 32 := 0x064
/-- `Status` (RW): the device status field (VirtIO 1.2 §2.1). -/
@[mvvm] def regStatus : BitVec 32 := 0x070
/-- `QueueDescLow` (W): low half of the selected queue's descriptor-table address. -/
@[mvvm] def regQueueDescLow : BitVec 32 := 0x080
/-- `QueueDescHigh` (W). -/
@[mvvm] def regQueueDescHigh : BitVec 32 := 0x084
/-- `QueueDriverLow` (W): low half of the selected queue's available-ring address. -/
@[mvvm] def regQueueDriverLow : BitVec 32 := 0x090
/-- `QueueDriverHigh` (W). -/
@[mvvm] def regQueueDriverHigh : BitVec 32 := 0x094
/-- `QueueDeviceLow` (W): low half of the selected queue's used-ring address. -/
@[mvvm] def regQueueDeviceLow : BitVec 32 := 0x0a0
/-- `QueueDeviceHigh` (W). -/
@[mvvm] def regQueueDeviceHigh : BitVec 32 := 0x0a4
/-- `ConfigGeneration` (R). -/
@[mvvm] def regConfigGeneration : BitVec 32 := 0x0fc
/-- First offset of the device-specific configuration space. -/
@[mvvm] def regConfigSpace : BitVec 32 := 0x100

/-- The magic value read at offset 0. -/
@[mvvm] def magicValue : BitVec 32 := 0x74726976
/-- The transport version this device implements. -/
@[mvvm] def mmioVersion : BitVec 32 := 2
/-- Our vendor id ("MVMM" in little-endian). -/
@[mvvm] def vendorId : BitVec 32 := 0x4d4d564d

/-- Status bit ACKNOWLEDGE: the guest found the device. -/
@[mvvm] def statusAcknowledge : BitVec 32 := 1
/-- Status bit DRIVER: the guest knows how to drive the device. -/
@[mvvm] def statusDriver : BitVec 32 := 2
/-- Status bit DRIVER_OK: the driver is set up; the device is live. -/
@[mvvm] def statusDriverOk : BitVec 32 := 4
/-- Status bit FEATURES_OK: the driver's feature set was accepted. -/
@[mvvm] def statusFeaturesOk : BitVec 32 := 8
/-- Status bit DEVICE_NEEDS_RESET: the device hit an error it cannot recover from. -/
@[mvvm] def statusNeedsReset : BitVec 32 := 64
/-- Status bit FAILED: the guest gave up on the device. -/
@[mvvm] def statusFailed : BitVec 32 := 128

/-- ACKNOWLEDGE|DRIVER: the driver may negotiate features (VirtIO 1.2 §3.1.1 steps 3–4). -/
@[mvvm] def statusNegotiating : BitVec 32 := 3
/-- ACKNOWLEDGE|DRIVER|FEATURES_OK: the only status in which queue configuration is accepted
(the fix of CVE-2026-5747, Firecracker PR #5818). -/
@[mvvm] def statusConfiguring : BitVec 32 := 11
/-- ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK: the device is active. -/
@[mvvm] def statusActive : BitVec 32 := 15

/-- InterruptStatus bit 0: the device used a buffer (VirtIO 1.2 §4.2.2). -/
@[mvvm] def interruptUsedBuffer : BitVec 32 := 1
/-- InterruptStatus bit 1: the device configuration (or status) changed. -/
@[mvvm] def interruptConfigChange : BitVec 32 := 2

/-- Feature bit VIRTIO_F_VERSION_1 (bit 32): a non-legacy device only accepts drivers that
negotiate it (VirtIO 1.2 §6.1). -/
@[mvvm] def featureVersion1 : BitVec 64 := 0x100000000

/-- Number of virtqueues of the device; queue indices `0 … numQueues-1` exist. -/
@[mvvm] def numQueues : BitVec 32 := 2
/-- Largest queue size the device accepts (Firecracker uses 256; VirtIO 1.2 §2.7 allows 32768). -/
@[mvvm] def queueNumMax : BitVec 32 := 256

end MicroVMM.Model
