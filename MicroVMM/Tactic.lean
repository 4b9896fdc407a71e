import Std.Tactic.BVDecide
import MicroVMM.Attr

/-!
# The project tactic

Every obligation and refinement theorem is proved by the same macro, so that a proof that fails
in Lean fails everywhere the same way: introduce the hypotheses, unfold the model definitions
(every one is tagged `@[mvvm]`, see `MicroVMM/Attr.lean`) and simplify, then decide the remaining
bit-vector goal with `bv_decide`, whose structures and enumerations passes split structure-typed
terms into their fields and map enumerations to bit-vectors.

Trusted base: `bv_decide` checks an LRAT certificate by reflection and therefore trusts compiled
code; since Lean 4.29 each use adds an axiom `….\_native.bv\_decide.ax\_…`, which
`mvtool axioms` lists. `simp` and the structure splitting are kernel-checked.
-/

namespace MicroVMM

/-- `mvvm_decide`: intro, unfold the model, split structures, `simp`, `bv_decide`. -/
macro "mvvm_decide" : tactic =>
  `(tactic| (intros; simp only [mvvm] at *; bv_decide))

end MicroVMM
