/-!
# The C shim's contract

The VMM reaches guest memory only through the C shim (`shim/mvshim.c`). This file declares the
shim functions the model's memory-safety argument relies on, with `@[extern]`, and states their
contract as axioms. These axioms are part of the trusted base: Lean cannot check C. Each is
discharged on the C side as strongly as the machines allow; `spec/ffi_contract.yaml` records how,
and `python -m mvtool axioms` lists the axioms with that evidence.

The functions take and return scalars only (`UInt64`, `UInt32`, `USize`), so they bind to the C
symbols with Lean's ABI for unboxed scalars and no glue code.
No axiom says what a successful read returns: guest memory changes under the device's feet, so
the model treats every value read from it as adversarial input. The axioms are about bounds only.

This file is outside the MicroVMM Lean profile (it uses `opaque`, `axiom`, `Nat`): it is audited,
not modelled.
-/

namespace MicroVMM.FFI

/-- `mv_range_check mem_size gpa len`: 0 when `[gpa, gpa + len)` lies inside guest RAM
`[0, mem_size)`, `-EFAULT` (as an unsigned 32-bit value) otherwise. Every guest-memory access the
shim makes is guarded by it. -/
@[extern "mv_range_check"]
opaque rangeCheck (memSize : UInt64) (gpa : UInt64) (len : UInt64) : UInt32

/-- The range check accepts exactly the ranges that lie inside RAM, in mathematical integers
(no wrap-around). Discharged by Frama-C/WP on the ACSL contract of `mv_range_check`. -/
axiom rangeCheck_ok_iff (memSize gpa len : UInt64) :
    rangeCheck memSize gpa len = 0 ↔ gpa.toNat + len.toNat ≤ memSize.toNat

/-- `mv_lean_mem_read_u32 vm gpa`: reads the 32-bit little-endian value at `gpa`; bit 32 of the
result is set when the read succeeded, and the low 32 bits are the value (0 on failure). -/
@[extern "mv_lean_mem_read_u32"]
opaque memReadU32 (vm : USize) (gpa : UInt64) : UInt64

/-- The size of guest RAM the shim mapped for `vm`. -/
@[extern "mv_lean_mem_size"]
opaque memSize (vm : USize) : UInt64

/-- A guest read succeeds exactly when the four bytes lie inside RAM. -/
axiom memReadU32_ok_iff (vm : USize) (gpa : UInt64) :
    (memReadU32 vm gpa >>> 32) = 1 ↔ gpa.toNat + 4 ≤ (memSize vm).toNat

/-- A failed guest read returns no data. -/
axiom memReadU32_fail_zero (vm : USize) (gpa : UInt64) :
    (memReadU32 vm gpa >>> 32) ≠ 1 → memReadU32 vm gpa = 0

/-- `mv_lean_mem_write_u32 vm gpa v`: writes `v` little-endian at `gpa`; returns 1 on success and
0, writing nothing, when the four bytes are not inside RAM. -/
@[extern "mv_lean_mem_write_u32"]
opaque memWriteU32 (vm : USize) (gpa : UInt64) (v : UInt32) : UInt32

/-- A guest write succeeds exactly when the four bytes lie inside RAM. -/
axiom memWriteU32_ok_iff (vm : USize) (gpa : UInt64) (v : UInt32) :
    memWriteU32 vm gpa v = 1 ↔ gpa.toNat + 4 ≤ (memSize vm).toNat

end MicroVMM.FFI
