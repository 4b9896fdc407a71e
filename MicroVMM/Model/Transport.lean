import MicroVMM.Model.Layout

/-!
# Register reads and writes

The driver-visible behaviour of the transport as two pure functions: `mmioRead s off` is the
value a 32-bit read of register `off` returns, `mmioWrite s off v` the state after a 32-bit write
of `v`. Reads have no side effects.

The rules that kill CVE-2026-5747:
* queue registers (`QueueNum`, `QueueReady`, `QueueDesc/Driver/Device`) are accepted only while
  status is exactly ACKNOWLEDGE|DRIVER|FEATURES_OK and, except `QueueReady`, only while the
  selected queue is not ready (VirtIO 1.2 §4.2.2.3 forbids the driver such writes; the device
  ignores them);
* `Status` is a state machine that sets one new bit per step and clears bits only by a reset to 0;
  DRIVER_OK is set only if `activationOk` holds, otherwise DEVICE_NEEDS_RESET is set;
* an out-of-range `QueueSel` reads as a non-existent queue and its writes are ignored.
-/

namespace MicroVMM.Model

/-- An access the transport handles: 32 bits wide, aligned, in the register block
(VirtIO 1.2 §4.2.2.2: the driver MUST use 32-bit aligned accesses for registers). -/
@[mvvm] def registerAccessOk (off : BitVec 32) (size : BitVec 32) : Bool :=
  size == 4 && (off &&& 3) == 0 && off.ult regConfigSpace

/-- The selected 32-bit word of the offered features (`DeviceFeaturesSel` 0 or 1). -/
@[mvvm] def deviceFeaturesWord (s : State) : BitVec 32 :=
  if s.deviceFeaturesSel == 0 then s.deviceFeatures.extractLsb' 0 32
  else if s.deviceFeaturesSel == 1 then s.deviceFeatures.extractLsb' 32 32
  else 0

/-- The value a 32-bit read of register `off` returns. Queue registers show the selected queue
only; a non-existent queue reads as all zeros (`QueueNumMax` 0, VirtIO 1.2 §4.2.2.1). -/
@[mvvm] def mmioRead (s : State) (off : BitVec 32) : BitVec 32 :=
  let q := queueAt s s.queueSel
  if off == regMagicValue then magicValue
  else if off == regVersion then mmioVersion
  else if off == regDeviceId then s.deviceId
  else if off == regVendorId then vendorId
  else if off == regDeviceFeatures then deviceFeaturesWord s
  else if off == regQueueNumMax then (if queueSelValid s then queueNumMax else 0)
  else if off == regQueueNum then q.num
  else if off == regQueueReady then (if q.ready then 1 else 0)
  else if off == regInterruptStatus then s.interruptStatus
  else if off == regStatus then s.status
  else if off == regQueueDescLow then q.desc.extractLsb' 0 32
  else if off == regQueueDescHigh then q.desc.extractLsb' 32 32
  else if off == regQueueDriverLow then q.driver.extractLsb' 0 32
  else if off == regQueueDriverHigh then q.driver.extractLsb' 32 32
  else if off == regQueueDeviceLow then q.device.extractLsb' 0 32
  else if off == regQueueDeviceHigh then q.device.extractLsb' 32 32
  else if off == regConfigGeneration then s.configGeneration
  else 0

/-- Reset (a write of 0 to `Status`, VirtIO 1.2 §2.4): every driver-written field returns to its
initial value, all queues become not ready and interrupts clear; the identity stays. -/
@[mvvm] def resetState (s : State) : State :=
  initState s.deviceId s.deviceFeatures s.ramBase s.ramSize

/-- The driver's feature set may be accepted: a subset of the offered features that includes
VIRTIO_F_VERSION_1 (VirtIO 1.2 §2.2.1, §6.1). -/
@[mvvm] def featuresAcceptable (s : State) : Bool :=
  (s.driverFeatures &&& ~~~s.deviceFeatures) == 0 && (s.driverFeatures &&& featureVersion1) != 0

/-- DEVICE_NEEDS_RESET is set and the driver is told through a configuration-change interrupt
(VirtIO 1.2 §2.1.2). -/
@[mvvm] def markNeedsReset (s : State) : State :=
  { s with status := s.status ||| statusNeedsReset,
           interruptStatus := s.interruptStatus ||| interruptConfigChange }

/-- A write to `Status`: reset on 0; FAILED may be added at any time; otherwise only the next
bit of ACKNOWLEDGE → DRIVER → FEATURES_OK → DRIVER_OK is accepted. FEATURES_OK needs an
acceptable feature set (it stays clear otherwise, VirtIO 1.2 §3.1.1 step 6); DRIVER_OK needs
`activationOk`, and its failure sets DEVICE_NEEDS_RESET. Any other value is ignored. -/
@[mvvm] def writeStatus (s : State) (v : BitVec 32) : State :=
  if v == 0 then resetState s
  else if v == (s.status ||| statusFailed) then { s with status := v }
  else if s.status == 0 && v == statusAcknowledge then { s with status := v }
  else if s.status == statusAcknowledge && v == statusNegotiating then { s with status := v }
  else if s.status == statusNegotiating && v == statusConfiguring then
    (if featuresAcceptable s then { s with status := v } else s)
  else if s.status == statusConfiguring && v == statusActive then
    (if activationOk s then { s with status := v } else markNeedsReset s)
  else s

/-- A write to one of the selected queue's registers, applied with `update` only while the
device is configuring, the selector names a queue and that queue is not ready. -/
@[mvvm] def queueConfigWritable (s : State) : Bool :=
  isConfiguring s && queueSelValid s && !(queueAt s s.queueSel).ready

/-- Replace the low 32 bits of an address. -/
@[mvvm] def setLow (a : BitVec 64) (v : BitVec 32) : BitVec 64 :=
  a.extractLsb' 32 32 ++ v

/-- Replace the high 32 bits of an address. -/
@[mvvm] def setHigh (a : BitVec 64) (v : BitVec 32) : BitVec 64 :=
  v ++ a.extractLsb' 0 32

/-- A write to a queue-configuration register of the selected queue (`off` is one of QueueNum,
QueueDesc/Driver/Device Low/High). Ignored unless `queueConfigWritable`. -/
@[mvvm] def writeQueueField (s : State) (off : BitVec 32) (v : BitVec 32) : State :=
  let q := queueAt s s.queueSel
  if !queueConfigWritable s then s
  else if off == regQueueNum then setQueueAt s s.queueSel { q with num := v }
  else if off == regQueueDescLow then setQueueAt s s.queueSel { q with desc := setLow q.desc v }
  else if off == regQueueDescHigh then setQueueAt s s.queueSel { q with desc := setHigh q.desc v }
  else if off == regQueueDriverLow then
    setQueueAt s s.queueSel { q with driver := setLow q.driver v }
  else if off == regQueueDriverHigh then
    setQueueAt s s.queueSel { q with driver := setHigh q.driver v }
  else if off == regQueueDeviceLow then
    setQueueAt s s.queueSel { q with device := setLow q.device v }
  else if off == regQueueDeviceHigh then
    setQueueAt s s.queueSel { q with device := setHigh q.device v }
  else s

/-- A write to `QueueReady` of the selected queue. Accepted only while configuring and for an
existing queue; 1 makes the queue ready only if its size is valid, 0 makes it not ready; other
values are ignored. -/
@[mvvm] def writeQueueReady (s : State) (v : BitVec 32) : State :=
  let q := queueAt s s.queueSel
  if !(isConfiguring s && queueSelValid s) then s
  else if v == 1 then (if queueNumValid q then setQueueAt s s.queueSel { q with ready := true } else s)
  else if v == 0 then setQueueAt s s.queueSel { q with ready := false }
  else s

/-- A write to `DriverFeatures`: accepted only during feature negotiation (status exactly
ACKNOWLEDGE|DRIVER, VirtIO 1.2 §3.1.1 step 5), into the word `DriverFeaturesSel` selects. -/
@[mvvm] def writeDriverFeatures (s : State) (v : BitVec 32) : State :=
  if s.status != statusNegotiating then s
  else if s.driverFeaturesSel == 0 then { s with driverFeatures := setLow s.driverFeatures v }
  else if s.driverFeaturesSel == 1 then { s with driverFeatures := setHigh s.driverFeatures v }
  else s

/-- The state after a 32-bit write of `v` to register `off`. Writes to read-only, reserved and
unknown offsets are ignored. `QueueNotify` changes no state: see `notifyAccepted`. -/
@[mvvm] def mmioWrite (s : State) (off : BitVec 32) (v : BitVec 32) : State :=
  if off == regDeviceFeaturesSel then { s with deviceFeaturesSel := v }
  else if off == regDriverFeatures then writeDriverFeatures s v
  else if off == regDriverFeaturesSel then { s with driverFeaturesSel := v }
  else if off == regQueueSel then { s with queueSel := v }
  else if off == regQueueReady then writeQueueReady s v
  else if off == regInterruptAck then { s with interruptStatus := s.interruptStatus &&& ~~~v }
  else if off == regStatus then writeStatus s v
  else if off == regQueueNum || off == regQueueDescLow || off == regQueueDescHigh
      || off == regQueueDriverLow || off == regQueueDriverHigh
      || off == regQueueDeviceLow || off == regQueueDeviceHigh then writeQueueField s off v
  else s

/-- A write of `v` to `QueueNotify` asks the device to process queue `v`; it does so only while
active and only for an existing, ready queue. -/
@[mvvm] def notifyAccepted (s : State) (v : BitVec 32) : Bool :=
  isActive s && v.ult numQueues && (queueAt s v).ready

/-- The device used buffers of a queue: InterruptStatus bit 0 is set. -/
@[mvvm] def signalUsedBuffer (s : State) : State :=
  { s with interruptStatus := s.interruptStatus ||| interruptUsedBuffer }

/-- The device hit an unrecoverable error while processing a queue (a malformed descriptor chain,
a buffer outside RAM): it sets DEVICE_NEEDS_RESET and stops (VirtIO 1.2 §2.1.2). -/
@[mvvm] def deviceError (s : State) : State :=
  markNeedsReset s

/-- The level of the device's interrupt line. -/
@[mvvm] def interruptPending (s : State) : Bool :=
  s.interruptStatus != 0

end MicroVMM.Model
