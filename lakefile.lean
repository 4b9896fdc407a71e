import Lake
open Lake DSL

/-! Lake project for MicroVMM: Lean 4 core only (no Mathlib). -/

package microvmm where
  leanOptions := #[⟨`autoImplicit, false⟩]

@[default_target]
lean_lib MicroVMM where
  globs := #[.andSubmodules `MicroVMM]
