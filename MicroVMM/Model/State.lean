import MicroVMM.Model.Registers

/-!
# Transport state

The state of one virtio-mmio device as the transport sees it: the identity the VMM fixed when it
created the device (device id, offered features, the guest-RAM range queues must lie in), the
registers the driver writes, and the configuration of each of the `numQueues` virtqueues.
-/

namespace MicroVMM.Model

/-- Configuration of one split virtqueue as the driver programs it (VirtIO 1.2 §2.7, §4.2.3.2). -/
structure Queue where
  /-- `QueueNum`: the queue size the driver chose; 0 until written. -/
  num : BitVec 32
  /-- `QueueReady`. -/
  ready : Bool
  /-- `QueueDesc`: guest-physical address of the descriptor table. -/
  desc : BitVec 64
  /-- `QueueDriver`: guest-physical address of the available ring. -/
  driver : BitVec 64
  /-- `QueueDevice`: guest-physical address of the used ring. -/
  device : BitVec 64
  deriving DecidableEq, Repr

/-- The transport state of one virtio-mmio device. -/
structure State where
  /-- Device type reported in `DeviceID` (fixed at creation). -/
  deviceId : BitVec 32
  /-- Feature bits the device offers (fixed at creation). -/
  deviceFeatures : BitVec 64
  /-- First byte of guest RAM (fixed at creation). -/
  ramBase : BitVec 64
  /-- Size of guest RAM in bytes (fixed at creation). -/
  ramSize : BitVec 64
  /-- `DeviceFeaturesSel`. -/
  deviceFeaturesSel : BitVec 32
  /-- The feature bits the driver accepted, both words. -/
  driverFeatures : BitVec 64
  /-- `DriverFeaturesSel`. -/
  driverFeaturesSel : BitVec 32
  /-- `QueueSel`: any value may be written; values ≥ `numQueues` select no queue. -/
  queueSel : BitVec 32
  /-- Virtqueue 0. -/
  q0 : Queue
  /-- Virtqueue 1. -/
  q1 : Queue
  /-- `InterruptStatus`. -/
  interruptStatus : BitVec 32
  /-- `Status`. -/
  status : BitVec 32
  /-- `ConfigGeneration`. -/
  configGeneration : BitVec 32
  deriving DecidableEq, Repr

/-- A queue in its reset state: size 0, not ready, all addresses 0. -/
@[mvvm] def emptyQueue : Queue :=
  { num := 0, ready := false, desc := 0, driver := 0, device := 0 }

/-- The state of a freshly created device with the given identity and guest-RAM range. -/
@[mvvm] def initState (deviceId : BitVec 32) (features : BitVec 64) (ramBase : BitVec 64)
    (ramSize : BitVec 64) : State :=
  { deviceId := deviceId, deviceFeatures := features, ramBase := ramBase, ramSize := ramSize,
    deviceFeaturesSel := 0, driverFeatures := 0, driverFeaturesSel := 0, queueSel := 0,
    q0 := emptyQueue, q1 := emptyQueue, interruptStatus := 0, status := 0,
    configGeneration := 0 }

/-- The queue with index `i`, or `emptyQueue` when `i ≥ numQueues`. -/
@[mvvm] def queueAt (s : State) (i : BitVec 32) : Queue :=
  if i == 0 then s.q0 else if i == 1 then s.q1 else emptyQueue

/-- Replace the queue with index `i`; no change when `i ≥ numQueues`. -/
@[mvvm] def setQueueAt (s : State) (i : BitVec 32) (q : Queue) : State :=
  if i == 0 then { s with q0 := q } else if i == 1 then { s with q1 := q } else s

/-- `QueueSel` names an existing queue. -/
@[mvvm] def queueSelValid (s : State) : Bool :=
  s.queueSel.ult numQueues

/-- The device is live: status is exactly ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK, with neither
DEVICE_NEEDS_RESET nor FAILED set. Only then does the device process queues. -/
@[mvvm] def isActive (s : State) : Bool :=
  s.status == statusActive

/-- Queue configuration is accepted only while status is exactly
ACKNOWLEDGE|DRIVER|FEATURES_OK (CVE-2026-5747; VirtIO 1.2 §3.1.1 step 7). -/
@[mvvm] def isConfiguring (s : State) : Bool :=
  s.status == statusConfiguring

/-- Guest RAM is a non-empty range that does not wrap around the 64-bit address space. -/
@[mvvm] def ramValid (s : State) : Bool :=
  s.ramBase.ult (s.ramBase + s.ramSize)

end MicroVMM.Model
