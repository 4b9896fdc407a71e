import MicroVMM.Model.Invariant
import MicroVMM.Spec.Lifecycle

/-!
# The abstraction function

Maps a concrete transport state to the abstract device of `MicroVMM.Spec`. The refinement
obligations (`spec/invariants.yaml`, kind `refinement`) state that every concrete step — each
register write and each device-side step — maps to an abstract `step` (possibly a stutter), and
that the concrete invariant implies the abstract one.
-/

namespace MicroVMM.Refinement

open MicroVMM.Model
open MicroVMM.Spec

/-- The lifecycle phase a status value stands for. -/
@[mvvm] def phaseOf (status : BitVec 32) : Phase :=
  if status == 0 then .reset
  else if (status &&& (statusNeedsReset ||| statusFailed)) != 0 then .failed
  else if status == statusActive then .active
  else .configuring

/-- The abstract view of one concrete queue. -/
@[mvvm] def absQueue (q : Queue) : AbsQueue :=
  { size := q.num, enabled := q.ready, descTable := q.desc, availRing := q.driver,
    usedRing := q.device }

/-- The abstraction function. -/
@[mvvm] def abstractState (s : State) : AbsDevice :=
  { phase := phaseOf s.status, q0 := absQueue s.q0, q1 := absQueue s.q1,
    memBase := s.ramBase, memSize := s.ramSize }

/-- A concrete step from `s` to `t` is matched by an abstract step (or a stutter). -/
@[mvvm] def refines (s : State) (t : State) : Bool :=
  step (abstractState s) (abstractState t)

end MicroVMM.Refinement
