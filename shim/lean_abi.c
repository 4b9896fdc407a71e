/*
 * Guest-memory accessors with Lean's ABI for unboxed scalars, bound by the `@[extern]`
 * declarations of MicroVMM/FFI/Shim.lean. The VM handle travels as a `USize` (size_t).
 * Each wraps the bounds-checked accessors of mvshim.c; their contract is the axioms
 * memReadU32_ok_iff, memReadU32_fail_zero and memWriteU32_ok_iff.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mvshim.h"

uint64_t mv_lean_mem_size(size_t vm)
{
    return vm == 0 ? 0 : mv_vm_memory_size((const mv_vm *)vm);
}

uint64_t mv_lean_mem_read_u32(size_t vm, uint64_t gpa)
{
    uint8_t bytes[4];
    if (vm == 0 || mv_mem_read((mv_vm *)vm, gpa, bytes, sizeof bytes, NULL, 0) != 0)
        return 0;
    uint32_t value = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16
                     | (uint32_t)bytes[3] << 24;
    return (UINT64_C(1) << 32) | value;
}

uint32_t mv_lean_mem_write_u32(size_t vm, uint64_t gpa, uint32_t value)
{
    const uint8_t bytes[4] = {(uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16),
                              (uint8_t)(value >> 24)};
    if (vm == 0 || mv_mem_write((mv_vm *)vm, gpa, bytes, sizeof bytes, NULL, 0) != 0)
        return 0;
    return 1;
}
