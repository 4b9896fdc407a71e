import MicroVMM.Model.Blk

/-!
# The transport invariant

`wellFormed` holds in every reachable state: it holds for `initState` over a valid RAM range and
is preserved by every register write and every device-side step (the obligations of kind
`invariant` in `spec/invariants.yaml`). It is what makes the ring obligations meaningful: while
the device is active, every ready queue passed the activation check, and because queue
configuration is frozen until reset, it still describes the queues the device uses.

The extracted `wellFormed` also serves as the runtime monitor of the hostile-guest fuzzer.
-/

namespace MicroVMM.Model

/-- `Status` is one of the values the state machine can reach: a prefix of
ACKNOWLEDGE → DRIVER → FEATURES_OK → DRIVER_OK, with DEVICE_NEEDS_RESET and FAILED possibly
added. -/
@[mvvm] def statusReachable (s : State) : Bool :=
  let core := s.status &&& ~~~(statusNeedsReset ||| statusFailed)
  core == 0 || core == statusAcknowledge || core == statusNegotiating
    || core == statusConfiguring || core == statusActive

/-- A ready queue always has a valid size. -/
@[mvvm] def readyQueuesSized (s : State) : Bool :=
  (!s.q0.ready || queueNumValid s.q0) && (!s.q1.ready || queueNumValid s.q1)

/-- Once DRIVER_OK is set, the activation check holds (and keeps holding: configuration is
frozen). -/
@[mvvm] def activeLayoutValid (s : State) : Bool :=
  (s.status &&& statusDriverOk) == 0 || activationOk s

/-- The transport invariant. -/
@[mvvm] def wellFormed (s : State) : Bool :=
  ramValid s && statusReachable s && readyQueuesSized s && activeLayoutValid s

end MicroVMM.Model
